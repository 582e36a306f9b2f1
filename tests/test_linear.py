"""Static and dynamic linear against the installed torch on every engine, the plain-loop spec, and bad input."""
import zlib
import numpy as np
import pytest
from qnb.core import QArray
from qnb.linear import (qlinear, qlinear_dynamic, linear_accumulator, linear_accumulator_reference, choose_qparams,
                        check_linear, check_linear_dynamic)
from qnb.verify import supported_engines

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
