"""qnb.pt2e against eager torch: exact float sums, the float ops bit for bit (every CPU capability), every pt2e model
with both quantizers (0 mismatches outside the float sums, those marked with their cause), and bad input."""
import math, os, subprocess, sys
from fractions import Fraction
import numpy as np, pytest
torch = pytest.importorskip('torch')
pytest.importorskip('torchao')
from qnb import pt2e as P
from qnb.verify import CHECKS

def _round32(q):
    "A Fraction rounded to float32 (nearest, ties to even; subnormals), for values inside float32's range."
    if q == 0: return np.float32(0)
    s, q = (-1 if q < 0 else 1), abs(q)
    e = q.numerator.bit_length() - q.denominator.bit_length() - 25
    while q / Fraction(2) ** e >= 2 ** 24: e += 1
    while q / Fraction(2) ** e < 2 ** 23: e -= 1
    e = max(e, -149)
    r = q / Fraction(2) ** e
    n = math.floor(r)
    if r - n > Fraction(1, 2) or (r - n == Fraction(1, 2) and n % 2): n += 1
    return np.float32(s * math.ldexp(n, e))

@pytest.mark.parametrize('kind', ['normal', 'ties', 'cancel', 'subnormal'])
def test_exact_matmul_is_the_exact_sum_rounded_once(kind):
    rng = np.random.default_rng(['normal', 'ties', 'cancel', 'subnormal'].index(kind))
    for _ in range(25):
        M, K, N = int(rng.integers(1, 4)), int(rng.integers(1, 40)), int(rng.integers(1, 4))
        if kind == 'normal': a, b = rng.standard_normal((M, K)), rng.standard_normal((K, N))
        elif kind == 'ties':
            a, b = rng.integers(-255, 256, (M, K)) * 2.0**-7, rng.integers(-128, 128, (K, N)) * 2.0**-9
            a[:, 0], b[0, :] = 2.0**30, 2.0**-30 * rng.choice([1, 3])
        elif kind == 'cancel':
            a, b = rng.standard_normal((M, K)) * 10.0**rng.integers(-15, 15, (M, K)), rng.standard_normal((K, N)) * 10.0**rng.integers(-15, 15, (K, N))
            h = K // 2
            if h: a[:, K - h:], b[K - h:] = -a[:, :h][:, ::-1], b[:h][::-1]
        else: a, b = rng.standard_normal((M, K)) * 1e-20, rng.standard_normal((K, N)) * 1e-22
        a, b = a.astype(np.float32), b.astype(np.float32)
        ref = np.array([[_round32(sum(Fraction(float(x)) * Fraction(float(y)) for x, y in zip(r, c))) for c in b.T] for r in a], np.float32)
        assert (P.exact_matmul(a, b) == ref).all()

def test_exact_matmul_forum_case_and_nonfinite():
    assert P.linear(np.array([[1e8, 1, -1e8]], np.float32), np.ones((1, 3), np.float32)).item() == 1.0
    a, b = np.ones((2, 3), np.float32), np.ones((3, 2), np.float32)
    a[0, 1], b[2, 1] = np.inf, np.nan
    y = P.exact_matmul(a, b)
    assert np.isinf(y[0, 0]) and np.isnan(y[:, 1]).all() and y[1, 0] == 3

def test_ops_check():
    res = CHECKS['pt2e_ops']('x86', np.random.default_rng(7), 150_000)
    assert res.compared >= 150_000 and res.mismatches == 0, res

@pytest.mark.parametrize('capability', ['default', 'avx2'])
def test_ops_check_under_other_capabilities(capability):
    "The lane counts and FMAs of the other builds (ATEN_CPU_CAPABILITY is read when torch loads: a child process)."
    code = ("import numpy as np, torch; from qnb import pt2e; from qnb.verify import CHECKS; "
            f"assert torch.backends.cpu.get_cpu_capability().lower() == '{capability}'; "
            "r = CHECKS['pt2e_ops']('x86', np.random.default_rng(3), 60_000); print(r.compared, r.mismatches)")
    p = subprocess.run([sys.executable, '-c', code], env={**os.environ, 'ATEN_CPU_CAPABILITY': capability},
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    compared, mismatches = map(int, p.stdout.split()[-2:])
    assert compared >= 60_000 and mismatches == 0

_BUILT = {}

def _model(name, quantizer):
    if (name, quantizer) not in _BUILT: _BUILT[name, quantizer] = P.build_pt2e(name, quantizer)
    return _BUILT[name, quantizer]

@pytest.mark.parametrize('quantizer', P.PT2E_QUANTIZERS)
@pytest.mark.parametrize('name', P.PT2E_MODELS)
def test_model(name, quantizer):
    gm, x = _model(name, quantizer)
    assert P.is_pt2e_graph(gm)
    rng = np.random.default_rng(P.PT2E_MODELS.index(name))
    for scale in (1.0, 4.0):                                       # 4: past the calibrated range, quantize saturates
        r = P.compare(gm, torch.from_numpy(rng.standard_normal(tuple(x.shape)).astype(np.float32) * scale))
        assert r.exact_mismatches == 0, str(r)
        sums = {l.op for l in r.layers if r.notes.get(l.name) == P.FLOAT_SUMS}
        assert sums and sums <= {'aten.conv2d', 'aten.linear', 'aten.matmul'}
        assert all(r.notes.get(l.name) == P.FLOAT_SUMS for l in r.layers if l.op in ('aten.conv2d', 'aten.linear', 'aten.matmul'))
        quantized_after = [l for l in r.layers if r.notes.get(l.name) == P.AFTER_FLOAT_SUMS]
        assert quantized_after and all(l.op == 'quantized_decomposed.quantize_per_tensor' for l in quantized_after)
        assert sum(l.mismatches for l in quantized_after) <= 2                 # about one integer in a million
        exact = [l for l in r.layers if l.name not in r.notes]
        assert {'quantized_decomposed.quantize_per_tensor', 'quantized_decomposed.dequantize_per_tensor'} <= {l.op for l in exact}

def test_run_returns_torch_tensors_close_to_torch():
    gm, x = _model('transformer', 'x86')
    y, t = P.run(gm, x), gm(x)
    y, t = (v[0] if isinstance(v, (tuple, list)) else v for v in (y, t))
    assert isinstance(y, torch.Tensor) and y.shape == t.shape
    assert (y - t).abs().max().item() < 0.05 * t.abs().max().item()     # a quantize step or two where a sum straddles a boundary
    ya = P.run(gm, x.numpy())
    assert isinstance(ya[0] if isinstance(ya, (tuple, list)) else ya, np.ndarray)

def test_report_names_the_causes():
    gm, x = _model('resnet', 'x86')
    r = P.compare(gm, x)
    s = str(r)
    assert ' *' in s and P.FLOAT_SUMS in s and '0 in the layers qnb reproduces exactly' in s
    assert r.rates()['exact'][0] == 0 and r.marked_mismatches > 0
    assert isinstance(r, P.ModelReport) and all(isinstance(l, P.LayerResult) for l in r.layers)

def test_lowering_argument():
    gm, x = _model('resnet', 'x86')
    assert P.check_lowering('inductor') == 'inductor'          # run/compare hand it to qnb.inductor (tests/test_inductor.py)
    with pytest.raises(ValueError, match="lowering must be None, 'inductor' or 'xnnpack'"): P.run(gm, x, lowering='eager')

def _quantized(module, x, quantizer='x86', convert=True):
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, convert_pt2e
    p = prepare_pt2e(torch.export.export(module.eval(), (x,)).module(), P.pt2e_quantizer(quantizer))
    p(x)
    return convert_pt2e(p) if convert else p

def test_refusals():
    torch.manual_seed(0)
    x = torch.randn(4, 8)
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Sigmoid())
    with pytest.raises(ValueError, match="prepared but not converted"): P.run(_quantized(net, x, convert=False), x)
    gm = _quantized(net, x)
    with pytest.raises(ValueError, match=r"node 'sigmoid': op aten.sigmoid is not reproduced"): P.run(gm, x)
    with pytest.raises(TypeError, match="torch.fx.GraphModule"): P.run(net, x)
    with pytest.raises(ValueError, match="not a converted pt2e graph"): P.run(torch.fx.symbolic_trace(net), x)
    with pytest.raises(ValueError, match="takes 1 input"): P.run(_model('resnet', 'x86')[0], [x, x])
    with pytest.raises(ValueError, match="quantizer must be one of"): P.build_pt2e('resnet', 'fbgemm')
    with pytest.raises(ValueError, match="name must be one of"): P.build_pt2e('vgg')
    with pytest.raises(ValueError, match="approximate='tanh' is not supported"): P.gelu(np.ones(3, np.float32), 'tanh')
    with pytest.raises(TypeError, match="must be a float32 tensor"): P.relu(np.ones(3))
    with pytest.raises(ValueError, match="not reproduced"): P.mean(np.ones((2, 3, 4), np.float32), 0)

def test_model_run_and_compare_take_pt2e_graphs():
    from qnb import model as M
    gm, x = _model('mobilenet_v2', 'x86')
    assert all(torch.equal(a, b) for a, b in zip(M.run(gm, x), P.run(gm, x)))
    assert isinstance(M.compare(gm, x), P.Pt2eReport)
    net = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(4, 4)).eval())
    with pytest.raises(ValueError, match="applies to pt2e graphs"): M.run(net, torch.randn(2, 4), lowering='inductor')
