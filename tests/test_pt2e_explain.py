"""qnb.pt2e_explain: one element of a pt2e node, step by step, against torch (and through qnb.explain.explain_layer)."""
import numpy as np, pytest
torch = pytest.importorskip('torch')
pytest.importorskip('torchao')
from qnb import pt2e as P
from qnb.pt2e_explain import explain_node, region_value, ulps_apart
from qnb.explain import explain_layer

@pytest.fixture(scope='module')
def mlp():
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, convert_pt2e
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(32, 24), torch.nn.ReLU(), torch.nn.Linear(24, 8)).eval()
    x = torch.randn(64, 32)
    p = prepare_pt2e(torch.export.export(net, (x,)).module(), P.pt2e_quantizer('x86')); p(x)
    return convert_pt2e(p), x

def test_every_node_explains_and_exact_nodes_match(mlp):
    gm, x = mlp
    for n in gm.graph.nodes:
        if n.op != 'call_function' or n.name.startswith('_guards'): continue
        e = explain_node(gm, x, n.name, tuple([1] * len(e_shape(gm, x, n.name))))
        inexact = P.op_table()[n.target][1] == P.INEXACT
        assert e.steps and (e.match or inexact or P.FLOAT_SUMS in ' '.join(e.notes) or P.AFTER_FLOAT_SUMS in e.notes), (n.name, str(e))
        assert e.kernel is not None and str(e) and e._repr_markdown_()

def e_shape(gm, x, name):
    return P.torch_outputs(gm, [x])[name].shape

def test_quantize_steps_are_torch_arithmetic(mlp):
    gm, x = mlp
    e = explain_node(gm, x, 'quantize_per_tensor_default', (5, 7))
    steps = {s.name: s.value for s in e.steps}
    assert steps['biased, clamped (torch)'] == e.torch == e.kernel
    assert steps['reciprocal'] == np.float32(1.0 / gm.graph.find_nodes(op='call_function', target=next(
        n.target for n in gm.graph.nodes if n.name == 'quantize_per_tensor_default'))[0].args[1])

def test_explain_layer_takes_a_pt2e_graph(mlp):
    gm, x = mlp
    assert str(explain_layer(gm, x, 'linear', (0, 0))) == str(explain_node(gm, x, 'linear', (0, 0)))

def test_ulps():
    one = np.float32(1)
    assert ulps_apart(one, one) == 0 and ulps_apart(one, np.nextafter(one, np.float32(0))) == 1

def test_bad_input(mlp):
    gm, x = mlp
    with pytest.raises(ValueError, match="not an op node"): explain_node(gm, x, 'conv', (0, 0))
    with pytest.raises(ValueError, match=r"index\[0\] must be in \[0, 63\]"): explain_node(gm, x, 'linear', (64, 0))
    with pytest.raises(TypeError, match="node must be a node name"): explain_node(gm, x, None, (0, 0))
    with pytest.raises(NotImplementedError, match="lowering='inductor'"): explain_node(gm, x, 'linear', (0, 0), lowering='inductor')

def test_explain_onednn_and_xnnpack_stages_are_the_ops():
    from qnb.pt2e_explain import explain_onednn, explain_xnnpack
    rng = np.random.default_rng(3)
    x, w = rng.integers(0, 256, (2, 24)).astype(np.uint8), rng.integers(-128, 128, (5, 24)).astype(np.int8)
    ws, wz, b = np.full(5, 0.004, np.float32), np.zeros(5, np.int64), rng.standard_normal(5).astype(np.float32)
    for post in (('none', [], ''), ('relu', [], ''), ('hardtanh', [0.0, 6.0], '')):
        e = explain_onednn('qlinear_pointwise', x, 0.03, 7, w, ws, wz, b, 0.05, 3, None, *post, index=(1, 4))
        assert e.match, str(e)
    e = explain_xnnpack('fully_connected', x.astype(np.int16).clip(-128, 127).astype(np.int8), 0.03, 7, w, ws, b, 0.05, 3, index=(0, 2))
    assert e.steps[-1].value == e.kernel
