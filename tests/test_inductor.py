"qnb.inductor: pt2e graphs as torch.compile (inductor, freezing) runs them, against the compiled models."
import warnings
import numpy as np
import pytest
import torch
import torch._inductor.config as inductor_cfg
from qnb import inductor as I, pt2e as P

warnings.filterwarnings('ignore')

@pytest.fixture(scope='module')
def resnet():
    gm, x = P.build_pt2e('resnet', 'x86')
    return gm, x, I.program(gm, x)

@pytest.fixture(scope='module')
def transformer():
    gm, x = P.build_pt2e('transformer', 'x86')
    return gm, x, I.program(gm, x)

def _compiled(prog, x):
    with inductor_cfg.patch(I.inductor_config(prog.capability)), torch.no_grad(): return prog.compiled(x.clone())

def test_resnet_outputs_bit_exact(resnet):
    gm, x, prog = resnet
    rng = np.random.default_rng(0)
    for i in range(6):
        xi = torch.from_numpy((rng.standard_normal(tuple(x.shape)) * (4.0 if i % 3 == 2 else 1.0)).astype(np.float32))
        ours = P.run(gm, xi, lowering='inductor')                   # qnb.pt2e dispatches to qnb.inductor
        assert torch.equal(ours, _compiled(prog, xi))

def test_resnet_compare_every_onednn_node(resnet):
    gm, x, _ = resnet
    r = P.compare(gm, x * 3, lowering='inductor')
    assert r.exact_mismatches == 0 and r.marked_mismatches == 0
    assert sum(l.op.startswith('onednn.') for l in r.layers) == 9    # 8 convs (3 with the residual sum) and the fc

def test_transformer_fault_named_input_kept(transformer):
    gm, x, _ = transformer
    r = I.compare(gm, x)
    assert r.exact_mismatches == 0
    row = r.layers[-1]
    assert row.torch_fault == I.QLINEAR_SUM_INPUT and row.mismatches > 0   # torch's compiled code overwrote its input
    assert any(v == I.FLASH_ATTENTION for v in r.notes.values())
    x0 = x.clone()
    I.run(gm, x0)
    assert torch.equal(x0, x)                                        # qnb leaves it alone

def test_reduction_orders_against_inductor():
    rng = np.random.default_rng(3)
    h = (rng.standard_normal((3, 37)) * 1e-3).astype(np.float32); h[:, 20] = 3e4
    with inductor_cfg.patch({'cpp.simdlen': 512}), torch.no_grad():
        theirs = torch.compile(lambda t: t.sum(-1))(torch.from_numpy(h)).numpy()
    assert np.array_equal(I.reduction_sum(h, [1], (37, 1), 16), theirs)
    lanes = I.reduction_sum(h, [1], (37, 1), 16)
    assert not np.array_equal(lanes, I.reduction_sum(h, [1], (1, 3), 16))   # vertical order: another float

def test_refusals():
    with pytest.raises(ValueError, match='inductor-int8-activation-qconv'):
        I.run(*P.build_pt2e('mobilenet_v2', 'xnnpack'))
    with pytest.raises(ValueError, match="lowering must be None, 'inductor' or 'xnnpack'"):
        P.run(*P.build_pt2e('transformer', 'x86'), lowering='aot')
    with pytest.raises(NotImplementedError, match='Welford'):
        I.var_mean(np.ones((2, 2000), np.float32), [1], 0, True, (2000, 1))
