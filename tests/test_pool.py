"""Max, average and adaptive average pooling against the installed torch (NCHW and channels-last kernels, 2-D and
3-D, every CPU capability), and bad input."""
import numpy as np
import pytest
import torch
from qnb.core import QArray
from qnb.pool import (qmax_pool2d, qmax_pool3d, qavg_pool2d, qavg_pool3d, qadaptive_avg_pool2d, qadaptive_avg_pool3d,
                      check_max_pool, check_avg_pool2d, check_adaptive_avg_pool)
from qnb.verify import supported_engines, verify, supported_capabilities

@pytest.mark.parametrize('engine', supported_engines())
def test_max_pool_sweep(engine):
    r = check_max_pool(engine, np.random.default_rng(7), 300_000)
    assert r.mismatches == 0 and r.compared >= 300_000, r

@pytest.mark.parametrize('engine', supported_engines())
def test_avg_pool2d_sweep(engine):
    r = check_avg_pool2d(engine, np.random.default_rng(8), 300_000)
    assert r.mismatches == 0 and r.compared >= 300_000, r

@pytest.mark.parametrize('engine', supported_engines())
def test_adaptive_avg_pool_sweep(engine):
    r = check_adaptive_avg_pool(engine, np.random.default_rng(9), 200_000)
    assert r.mismatches == 0 and r.compared >= 200_000, r

def test_channels_last_and_3d_pools_every_capability():
    rows = verify(50_000, engines=['x86', 'qnnpack'], kernels=['avg_pool_nhwc'], capabilities=supported_capabilities(), out=print)
    assert rows and all(r['mismatches'] == 0 and r['compared'] >= 50_000 for r in rows), rows

def test_formerly_refused_channels_last_inputs():
    for shape in ((1, 1, 5, 5), (2, 3, 1, 1)):
        x = QArray(np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8), 0.1, 3, 'quint8')
        t = x.to_torch()
        assert np.array_equal(qavg_pool2d(x, 1).int_repr, torch.nn.functional.avg_pool2d(t, 1).int_repr().numpy())
        assert np.array_equal(qadaptive_avg_pool2d(x, 1).int_repr, torch.nn.functional.adaptive_avg_pool2d(t, 1).int_repr().numpy())

X = QArray(np.zeros((1, 2, 5, 5), np.uint8), 0.1, 3, 'quint8')
X5 = QArray(np.zeros((1, 2, 3, 4, 5), np.uint8), 0.1, 3, 'quint8')

@pytest.mark.parametrize('call, match', [
    (lambda: qmax_pool2d(X, 3, padding=2), 'padding must be at most half of kernel_size'),
    (lambda: qmax_pool2d(X, 7), 'output size .* is too small'),
    (lambda: qmax_pool3d(X, 2), 'must have 5 dimensions'),
    (lambda: qmax_pool2d(X, 1, engine='qnnpack'), "QNNPACK refuses 1x1 pooling"),
    (lambda: qmax_pool2d(QArray(np.zeros((2, 5, 5), np.uint8), 0.1, 3, 'quint8'), 2, engine='qnnpack'), "must be batched"),
    (lambda: qmax_pool3d(X5, 2, engine='qnnpack'), "not available on engine 'qnnpack'"),
    (lambda: qmax_pool2d(X, 0), 'kernel_size must be >= 1'),
    (lambda: qavg_pool2d(X, 3, divisor_override=0), 'divisor_override must be a non-zero int'),
    (lambda: qavg_pool2d(X, 1, engine='qnnpack'), "QNNPACK refuses 1x1 pooling"),
    (lambda: qavg_pool2d(QArray(np.zeros((2, 5, 5), np.uint8), 0.1, 3, 'quint8'), 2, engine='qnnpack'), "must be 4-dimensional"),
    (lambda: qavg_pool3d(QArray(np.zeros((2, 5, 5), np.uint8), 0.1, 3, 'quint8'), 2), 'must have 4 or 5 dimensions'),
    (lambda: qavg_pool3d(X5, 2, divisor_override=0), 'divisor_override must be a non-zero int'),
    (lambda: qavg_pool3d(X5, 5, 1), 'negative'),
    (lambda: qavg_pool3d(X5, (2, 2)), 'kernel_size must be an int or a tuple of 3 ints'),
    (lambda: qadaptive_avg_pool2d(X, 0), 'output_size must be >= 1'),
    (lambda: qadaptive_avg_pool3d(X5, 1), 'quantized mean'),
    (lambda: qadaptive_avg_pool3d(X5, (2, 2)), 'output_size must be an int or a tuple of 3 ints'),
    (lambda: qadaptive_avg_pool3d(QArray(np.zeros((3, 1, 4, 5), np.uint8), 0.1, 3, 'quint8'), 2), 'unbatched input with D = 1'),
    (lambda: qadaptive_avg_pool2d(X, 2, channels_last='yes'), 'channels_last must be None or a bool'),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match): call()

def test_empty_output_like_torch():
    assert qavg_pool3d(QArray(np.zeros((2, 3, 1, 1, 1), np.uint8), 0.1, 3, 'quint8'), 2).shape == (2, 3, 0, 0, 0)

@pytest.mark.parametrize('dtype', ['quint8', 'qint8'])
def test_large_avg_pool2d_on_every_core_against_torch(dtype):
    "8x64x56x56: separable sums by blocks of planes on every core; same integers as torch (fbgemm/x86/onednn kernel) and as one thread."
    import os
    lo, hi = (0, 255) if dtype == 'quint8' else (-128, 127)
    q = np.random.default_rng(6).integers(lo, hi + 1, (8, 64, 56, 56)).astype(np.uint8 if dtype == 'quint8' else np.int8)
    torch.backends.quantized.engine = 'x86'
    for z, args in ((lo, (3, 2, 1)), (hi, (3, 2, 1, True, False)), (lo + 7, (2, 2, 0, False, True, 3))):
        x = QArray(q, 0.25, z, dtype)
        ours = qavg_pool2d(x, *args, engine='x86').int_repr
        assert np.array_equal(ours, torch.nn.functional.avg_pool2d(x.to_torch(), *args).int_repr().numpy())
        os.environ['QNB_NUM_THREADS'] = '1'
        try: assert np.array_equal(ours, qavg_pool2d(x, *args, engine='x86').int_repr)
        finally: del os.environ['QNB_NUM_THREADS']
