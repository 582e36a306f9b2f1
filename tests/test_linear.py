"""Static and dynamic linear against the installed torch on every engine, the plain-loop spec, and bad input."""
import zlib
import numpy as np
import pytest
from qnb.core import QArray
from qnb.linear import (qlinear, qlinear_dynamic, linear_accumulator, linear_accumulator_reference, choose_qparams,
                        check_linear, check_linear_dynamic)
from qnb.verify import supported_engines, both_sides

ENGINES = supported_engines()

@pytest.mark.parametrize('engine', ENGINES)
@pytest.mark.parametrize('check', [check_linear, check_linear_dynamic], ids=['linear', 'linear_dynamic'])
def test_linear_sweep(engine, check):
    r = check(engine, np.random.default_rng(zlib.crc32(f'{check.__name__}/{engine}'.encode())), 400_000)
    print(r)
    assert r.mismatches == 0 and r.compared >= 400_000, r

def test_accumulator_matches_the_spec():
    rng = np.random.default_rng(0)
    for _ in range(50):
        M, K, O = (int(v) for v in rng.integers(1, 12, 3))
        x, w = rng.integers(0, 256, (M, K)), rng.integers(-128, 128, (O, K))
        zx, zw = int(rng.integers(0, 256)), rng.integers(-20, 20, O)
        np.testing.assert_array_equal(np.asarray(linear_accumulator(x, zx, w, zw), np.int64), linear_accumulator_reference(x, zx, w, zw))

def test_large_reduction_is_exact():
    "K = 70000 with extreme values: the float32 chunks and float64 sum of eq. (C2) stay exact."
    K = 70_000
    x = np.full((2, K), 255); w = np.full((3, K), -128)
    acc = np.asarray(linear_accumulator(x, 0, w, 0))
    assert np.all(acc == -(255 * 128 * K) % 2**32 - (2**32 if (-(255 * 128 * K)) % 2**32 >= 2**31 else 0))

X = QArray(np.zeros((2, 8), np.uint8), 0.1, 0, 'quint8')
W = QArray(np.zeros((4, 8), np.int8), 0.01, 0, 'qint8')

@pytest.mark.parametrize('call, exc, match', [
    (lambda: qlinear(X, QArray(np.zeros((4, 7), np.int8), 0.01, 0, 'qint8')), ValueError, 'last dimension must be in_features = 7'),
    (lambda: qlinear(QArray(np.zeros((2, 8), np.int8), 0.1, 0, 'qint8'), W), TypeError, 'input must be quint8'),
    (lambda: qlinear(X, QArray(np.zeros((4, 8), np.uint8), 0.01, 0, 'quint8')), TypeError, 'weight must be qint8'),
    (lambda: qlinear(X, W, np.zeros(3, np.float32)), ValueError, r'bias must have shape \(4,\)'),
    (lambda: qlinear(X, W, scale=-1.0), ValueError, 'scale must be a finite number > 0'),
    (lambda: qlinear(X, W, zero_point=-1), ValueError, r'zero_point must be in \[0, 255\]'),
    (lambda: qlinear(X, QArray(np.zeros((4, 8), np.int8), 0.01, 2, 'qint8'), engine='onednn'), ValueError, 'weight zero points must all be 0'),
    (lambda: qlinear_dynamic(np.zeros(8, np.float32), W), ValueError, 'at least 2 dimensions'),
    (lambda: qlinear_dynamic(np.full((2, 8), np.nan, np.float32), W), ValueError, 'input must be finite'),
    (lambda: qlinear_dynamic(np.zeros((2, 8), np.int32), W), TypeError, 'input must be float'),
    (lambda: choose_qparams(1.0, 0.0), ValueError, 'x_min must be <= x_max'),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match): call()

def test_dynamic_empty_batch_matches_torch():
    "An input with a zero-sized leading dim gives an empty (..., out_features) output, as torch's."
    import torch
    w = torch.quantize_per_tensor(torch.randn(5, 7) * 0.1, 0.01, 0, torch.qint8)
    for lead in ((0,), (2, 0)):
        x = torch.randn(*lead, 7)
        for engine in supported_engines():
            torch.backends.quantized.engine = engine
            theirs = torch.ops.quantized.linear_dynamic(x, torch.ops.quantized.linear_prepack(w, None), True).numpy()
            ours = qlinear_dynamic(x, w, None, engine=engine)
            assert ours.shape == (*lead, 5) and ours.dtype == theirs.dtype
            # oneDNN flattens the leading dims and returns (0, 5): a torch fault (see nbs/04_linear.ipynb)
            assert theirs.shape == ((0, 5) if engine == 'onednn' else ours.shape)

# ---- issue 19 ------------------------------------------------------------------------------------------------------
import torch
from qnb.conv import BLOCK_ELEMENTS
from qnb.linear import (LINEAR_GEMM_ROWS, linear_prepack, qlinear_packed, qlinear_leaky_relu, qlinear_tanh, zero_size_case,
                        acc_zero_twin, torch_zero_size_fault, torch_linear, qnb_linear, check_linear_empty,
                        check_linear_tanh, check_linear_leaky_relu, check_linear_relu_dynamic)

def _row_counts(O):
    "Row counts at and around every block boundary of a static linear with O outputs (and the dynamic one's)."
    inner = BLOCK_ELEMENTS // O
    edges = {LINEAR_GEMM_ROWS, 2 * LINEAR_GEMM_ROWS, inner, 2 * inner}
    return sorted(m + d for m in edges for d in (-1, 0, 1))

@pytest.mark.parametrize('O', [3, 8, 100])
def test_every_row_count_matches_torch(O):
    "Row counts around LINEAR_GEMM_ROWS and BLOCK_ELEMENTS // O (and multiples): 1025 rows once failed to broadcast."
    rng = np.random.default_rng(O)
    K = 7
    w = QArray(rng.integers(-128, 128, (O, K)).astype(np.int8), 0.01, 0, 'qint8')
    b = rng.standard_normal(O).astype(np.float32)
    for M in _row_counts(O):
        x = QArray(rng.integers(0, 256, (M, K)).astype(np.uint8), 0.05, 64, 'quint8')
        xf = rng.standard_normal((M, K)).astype(np.float32)
        for engine in ENGINES:
            torch.backends.quantized.engine = engine
            p = torch.ops.quantized.linear_prepack(w.to_torch(), torch.from_numpy(b))
            theirs = torch.ops.quantized.linear(x.to_torch(), p, 0.1, 3).int_repr().numpy()
            np.testing.assert_array_equal(qlinear(x, w, b, 0.1, 3, engine=engine).int_repr, theirs, err_msg=f'{engine} M={M}')
            np.testing.assert_array_equal(qlinear_packed(x, linear_prepack(w, b), 0.1, 3, engine=engine).int_repr, theirs)
            p = torch.ops.quantized.linear_prepack(w.to_torch(), torch.from_numpy(b))   # fresh: oneDNN's static run
            theirs = torch.ops.quantized.linear_dynamic(torch.from_numpy(xf), p, True).numpy()    # reorders it (qnb.faults onednn-linear-static-then-dynamic-segfault)
            np.testing.assert_array_equal(qlinear_dynamic(xf, w, b, engine=engine).view(np.int32), theirs.view(np.int32))

def test_the_reported_1025_rows():
    w = QArray(np.ones((8, 16), np.int8), 0.1, 0, 'qint8')
    y = qlinear(QArray(np.zeros((1025, 16), np.uint8), 0.05, 64, 'quint8'), w, None, 0.1, 0)
    assert y.shape == (1025, 8) and np.all(y.int_repr == 0)

@pytest.mark.parametrize('engine', ENGINES)
@pytest.mark.parametrize('dynamic', [False, True], ids=['static', 'dynamic'])
def test_zero_sizes(engine, dynamic):
    """0 rows, in_features or out_features: torch's value where torch is right; where it is not (uninitialised memory,
    SIGFPE: see qnb.faults), torch's own bias-only value for the same case with one input feature at the zero point."""
    rng = np.random.default_rng(19)
    for shape in ((0, 5, 4), (3, 0, 4), (0, 0, 4), (2, 0, 1), (3, 5, 0), (3, 0, 0), (0, 5, 0)):
        for _ in range(3):
            case = zero_size_case(rng, engine, dynamic, *shape)
            ours, fault = qnb_linear(case), torch_zero_size_fault(case)
            assert ours.shape == (shape[0], shape[2])
            if fault is None: theirs = torch_linear(case)                  # torch neither crashes nor misreads here
            elif ours.size: theirs = torch_linear(acc_zero_twin(case))
            else: continue
            np.testing.assert_array_equal(ours.view(np.uint8), np.asarray(theirs).view(np.uint8), err_msg=f'{shape} {fault}')

def test_zero_size_check_with_torch_in_children():
    r = check_linear_empty('fbgemm', np.random.default_rng(0), 0, repeats=1)
    assert r.mismatches == 0 and r.torch_faults == 4 and r.compared > 0, r

def test_bias_only_value_when_in_features_is_zero():
    "The brief's example: bias 1, output scale 0.1 gives 10 (+ zero point) on every engine, as QNNPACK's torch does."
    w = QArray(np.zeros((4, 0), np.int8), 0.1, 0, 'qint8')
    for engine in ENGINES:
        y = qlinear(QArray(np.zeros((3, 0), np.uint8), 0.05, 64, 'quint8'), w, np.ones(4, np.float32), 0.1, 3, engine=engine)
        assert np.all(y.int_repr == 13), engine
        assert np.all(qlinear_dynamic(np.zeros((3, 0), np.float32), w, np.ones(4, np.float32), engine=engine) == 1)

def _static_case(rng, O=6, K=16, M=40):
    w = QArray(rng.integers(-128, 128, (O, K)).astype(np.int8), 0.01, 0, 'qint8')
    x = QArray(rng.integers(0, 256, (M, K)).astype(np.uint8), 0.02, 3, 'quint8')
    return x, w, (rng.standard_normal(O) * 2.7).astype(np.float64)

@pytest.mark.parametrize('engine', ENGINES)
def test_bias_dtypes_as_torch(engine):
    "A torch bias of another float dtype: refused where torch refuses; on oneDNN (which misreads it) the float32-rounded bias."
    x, w, b64 = _static_case(np.random.default_rng(1))
    torch.backends.quantized.engine = engine
    p32 = torch.ops.quantized.linear_prepack(w.to_torch(), torch.from_numpy(b64).float())
    want = torch.ops.quantized.linear(x.to_torch(), p32, 0.05, 10).int_repr().numpy()
    xf = np.random.default_rng(2).standard_normal((5, 16)).astype(np.float32)
    want_dynamic = torch.ops.quantized.linear_dynamic(torch.from_numpy(xf), p32, True).numpy()
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        bt = torch.from_numpy(b64).to(dtype)
        if dtype != torch.float64:      # the float32 value of a rounded half/bfloat16 bias
            p32 = torch.ops.quantized.linear_prepack(w.to_torch(), bt.float())
            want = torch.ops.quantized.linear(x.to_torch(), p32, 0.05, 10).int_repr().numpy()
            want_dynamic = torch.ops.quantized.linear_dynamic(torch.from_numpy(xf), p32, True).numpy()
        if engine == 'onednn':
            np.testing.assert_array_equal(qlinear(x, w, bt, 0.05, 10, engine=engine).int_repr, want)
            np.testing.assert_array_equal(qlinear_packed(x, linear_prepack(w, bt), 0.05, 10, engine=engine).int_repr, want)
            np.testing.assert_array_equal(qlinear_dynamic(xf, w, bt, engine=engine), want_dynamic)
        else:
            with pytest.raises(RuntimeError): torch.ops.quantized.linear(x.to_torch(), torch.ops.quantized.linear_prepack(w.to_torch(), bt), 0.05, 10)
            with pytest.raises(TypeError, match='bias must be a float32 tensor'): qlinear(x, w, bt, 0.05, 10, engine=engine)
            packed = linear_prepack(w, bt)                     # torch's prepack takes it too; the run refuses
            with pytest.raises(TypeError, match='bias must be a float32 tensor'): qlinear_packed(x, packed, 0.05, 10, engine=engine)
            with pytest.raises(TypeError, match='bias must be a float32 tensor'): qlinear_dynamic(xf, w, bt, engine=engine)
    # NumPy float64 (and a list of Python floats): rounded to float32 first on every engine, as documented
    b32 = b64.astype(np.float32)
    p32 = torch.ops.quantized.linear_prepack(w.to_torch(), torch.from_numpy(b32))
    want = torch.ops.quantized.linear(x.to_torch(), p32, 0.05, 10).int_repr().numpy()
    for b in (b64, list(b64)):
        np.testing.assert_array_equal(qlinear(x, w, b, 0.05, 10, engine=engine).int_repr, want)
    for b in (np.arange(6), torch.arange(6)):
        with pytest.raises(TypeError, match='bias must be'): qlinear(x, w, b, 0.05, 10, engine=engine)

@pytest.mark.parametrize('engine', ENGINES)
def test_dynamic_input_dtypes_as_torch(engine):
    "A float64/float16 torch input is refused, as every engine's dynamic linear refuses it; NumPy float64 is rounded first."
    torch.backends.quantized.engine = engine
    w = QArray(np.random.default_rng(3).integers(-128, 128, (5, 8)).astype(np.int8), 0.01, 0, 'qint8')
    x64 = np.random.default_rng(4).standard_normal((3, 8)) * 3
    p = torch.ops.quantized.linear_prepack(w.to_torch(), None)
    for dtype in (torch.float64, torch.float16):
        with pytest.raises(RuntimeError): torch.ops.quantized.linear_dynamic(torch.from_numpy(x64).to(dtype), p, True)
        with pytest.raises(TypeError, match='input must be a float32 tensor'): qlinear_dynamic(torch.from_numpy(x64).to(dtype), w, engine=engine)
    want = torch.ops.quantized.linear_dynamic(torch.from_numpy(x64).float(), p, True).numpy()
    np.testing.assert_array_equal(qlinear_dynamic(x64, w, engine=engine), want)
    with pytest.raises(TypeError, match='input must be floating point'): qlinear_dynamic(np.ones((3, 8), np.int64), w, engine=engine)

@pytest.mark.parametrize('engine', ENGINES)
def test_extreme_output_scales_as_torch(engine):
    "Output scales whose float32 reciprocal is 0 or infinite: the zero point (fbgemm, x86, onednn), or QNNPACK's refusal."
    x, w, b = _static_case(np.random.default_rng(5))
    b = b.astype(np.float32)
    torch.backends.quantized.engine = engine
    for s in (1e39, 3.5e38, 1e-39, 1e-46):
        p = torch.ops.quantized.linear_prepack(w.to_torch(), torch.from_numpy(b))      # fresh: QNNPACK caches its op
        ours, theirs = both_sides(lambda: qlinear(x, w, b, s, 7, engine=engine).int_repr,
                                  lambda: torch.ops.quantized.linear(x.to_torch(), p, s, 7).int_repr().numpy())
        assert (ours is None) == (theirs is None) == (engine == 'qnnpack'), (engine, s)
        if ours is not None: np.testing.assert_array_equal(ours, theirs)

@pytest.mark.parametrize('engine', ENGINES)
def test_nan_and_infinite_bias_as_torch(engine):
    x, w, b = _static_case(np.random.default_rng(6))
    b = b.astype(np.float32); b[1:4] = [np.nan, np.inf, -np.inf]
    xf = np.random.default_rng(7).standard_normal((5, 16)).astype(np.float32)
    for relu in (False, True):
        for per_channel in (False, True):
            wq = QArray(w.int_repr, np.linspace(1e-3, 1e-2, 6), np.zeros(6, np.int64), 'qint8', axis=0) if per_channel else w
            case = dict(engine=engine, w=wq.int_repr, sw=wq.scale, zw=wq.zero_point, bias=b, relu=relu, dynamic=False,
                        x=x.int_repr, sx=x.scale, zx=x.zero_point, sy=0.05, zy=10)
            np.testing.assert_array_equal(qnb_linear(case), torch_linear(case))
            case.update(dynamic=True, x=xf, reduce_range=True)
            np.testing.assert_array_equal(qnb_linear(case).view(np.int32), torch_linear(case).view(np.int32))

def test_post_ops_run_on_onednn_only():
    x, w, b = _static_case(np.random.default_rng(8))
    for engine in ENGINES:
        if engine == 'onednn': continue
        with pytest.raises(ValueError, match="runs on engine 'onednn' only"): qlinear_tanh(x, w, b, 0.01, 128, engine=engine)
        with pytest.raises(ValueError, match="runs on engine 'onednn' only"): qlinear_leaky_relu(x, w, b, 0.05, 10, 0.1, engine=engine)
    with pytest.raises(ValueError, match='not both'): qlinear(x, w, b, 0.05, 10, relu=True, post_op='tanh', engine='onednn')
    with pytest.raises(ValueError, match='post_op must be'): qlinear(x, w, b, 0.05, 10, post_op='sigmoid', engine='onednn')
    with pytest.raises(ValueError, match='fuses relu, leaky_relu and tanh only'): qlinear(x, w, b, 0.05, 10, post_op='gelu', engine='onednn')

@pytest.mark.parametrize('check', [check_linear_tanh, check_linear_leaky_relu, check_linear_relu_dynamic],
                         ids=['linear_tanh', 'linear_leaky_relu', 'linear_relu_dynamic'])
@pytest.mark.parametrize('engine', ENGINES)
def test_post_op_sweeps(check, engine):
    r = check(engine, np.random.default_rng(zlib.crc32(f'{check.__name__}/{engine}'.encode())), 30_000)
    assert r.mismatches == 0, r

def test_fused_modules_map_to_qnb():
    "nniq.LinearLeakyReLU / LinearTanh (onednn) and nniqd.LinearReLU (every engine): the modules' outputs, from the qnb functions."
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.intrinsic.quantized.dynamic as nniqd
    rng = np.random.default_rng(9)
    x, w, b = _static_case(rng)
    b = b.astype(np.float32)
    torch.backends.quantized.engine = 'onednn'
    leaky, tanh = nniq.LinearLeakyReLU(16, 6, 0.2), nniq.LinearTanh(16, 6)
    for m in (leaky, tanh):
        m.set_weight_bias(w.to_torch(), torch.from_numpy(b)); m.scale, m.zero_point = 0.01, 128
    np.testing.assert_array_equal(qlinear_leaky_relu(x, w, b, 0.01, 128, 0.2, engine='onednn').int_repr, leaky(x.to_torch()).int_repr().numpy())
    np.testing.assert_array_equal(qlinear_tanh(x, w, b, 0.01, 128, engine='onednn').int_repr, tanh(x.to_torch()).int_repr().numpy())
    xf = rng.standard_normal((4, 16)).astype(np.float32)
    for engine in ENGINES:
        torch.backends.quantized.engine = engine
        m = nniqd.LinearReLU(16, 6)
        m.set_weight_bias(w.to_torch(), torch.from_numpy(b))
        np.testing.assert_array_equal(qlinear_dynamic(xf, w, b, relu=True, engine=engine), m(torch.from_numpy(xf)).numpy())

def test_stateful_torch_faults():
    """qnb.faults onednn-linear-post-op-cache and qnnpack-linear-stale-output-scale: torch's second call on one packed
    weight reuses the first call's post-op / output scale; qnb's packed weight keeps no such state."""
    rng = np.random.default_rng(10)
    x, w, b = _static_case(rng, M=5)
    b = b.astype(np.float32)
    tb = torch.from_numpy(b)
    torch.backends.quantized.engine = 'onednn'
    p = torch.ops.quantized.linear_prepack(w.to_torch(), tb)
    torch.ops.quantized.linear_leaky_relu(x.to_torch(), p, 0.05, 10, 0.1)
    stale = torch.ops.quantized.linear_tanh(x.to_torch(), p, 0.05, 10).int_repr().numpy()
    fresh = torch.ops.quantized.linear_tanh(x.to_torch(), torch.ops.quantized.linear_prepack(w.to_torch(), tb), 0.05, 10).int_repr().numpy()
    packed = linear_prepack(w, b)
    qlinear_packed(x, packed, 0.05, 10, post_op=('leaky_relu', 0.1), engine='onednn')
    np.testing.assert_array_equal(qlinear_packed(x, packed, 0.05, 10, post_op='tanh', engine='onednn').int_repr, fresh)
    print('onednn post-op cache: torch stale outputs', int((stale != fresh).sum()), 'of', fresh.size)
    torch.backends.quantized.engine = 'qnnpack'
    p = torch.ops.quantized.linear_prepack(w.to_torch(), tb)
    torch.ops.quantized.linear(x.to_torch(), p, 0.05, 10)
    stale = torch.ops.quantized.linear(x.to_torch(), p, 0.1, 10).int_repr().numpy()
    fresh = torch.ops.quantized.linear(x.to_torch(), torch.ops.quantized.linear_prepack(w.to_torch(), tb), 0.1, 10).int_repr().numpy()
    qlinear_packed(x, packed, 0.05, 10, engine='qnnpack')
    np.testing.assert_array_equal(qlinear_packed(x, packed, 0.1, 10, engine='qnnpack').int_repr, fresh)
    print('qnnpack output-scale cache: torch stale outputs', int((stale != fresh).sum()), 'of', fresh.size)
