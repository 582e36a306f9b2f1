"""Max, average and adaptive average pooling against the installed torch (NCHW and channels-last kernels, 2-D and
3-D, every CPU capability), and bad input."""
import numpy as np
import pytest
import torch
from qnb.core import QArray
from qnb.pool import (qmax_pool2d, qmax_pool3d, qavg_pool1d, qavg_pool2d, qavg_pool3d, qadaptive_avg_pool2d, qadaptive_avg_pool3d, qmean,
                      check_max_pool, check_avg_pool2d, check_adaptive_avg_pool, writes_permuted, strided_torch)
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
    (lambda: qadaptive_avg_pool3d(X5, (2, 2)), 'output_size must be an int or a tuple of 3 ints'),
    (lambda: qavg_pool1d(X, 2), 'must have 2 or 3 dimensions'),
    (lambda: qavg_pool1d(QArray(np.zeros((2, 5), np.uint8), 0.1, 3, 'quint8'), 2, engine='qnnpack'), 'must be batched'),
    (lambda: qavg_pool1d(QArray(np.zeros((1, 2, 5), np.uint8), 0.1, 3, 'quint8'), 3, padding=2), 'padding must be at most half'),
    (lambda: qavg_pool1d(QArray(np.zeros((1, 2, 5), np.uint8), 0.1, 3, 'quint8'), (2, 2)), 'kernel_size must be an int or a tuple of 1'),
    (lambda: qadaptive_avg_pool2d(X, 2, channels_last='yes'), 'channels_last must be None or a bool'),
    (lambda: qmean(X, 1), 'dim must name trailing dimensions'),
    (lambda: qmean(X, (1, 2, 3), channels_last=True), 'spatial dimensions only for a channels-last input'),
    (lambda: qmean(X, (2, 2)), 'must not name a dimension twice'),
    (lambda: qmean(X, 4), r'dim must be in \[-4, 3\]'),
    (lambda: qmean(X, True), 'dim must be None, an int or a sequence of ints'),
    (lambda: qmean(X, -1, keepdim=1), 'keepdim must be a bool'),
    (lambda: qmean(X, -1, channels_last=True, num_threads=0), 'num_threads must be an int >= 1'),
    (lambda: qmean(QArray(np.zeros((2, 5), np.uint8), 0.1, 3, 'quint8'), -1, channels_last=True), 'needs a 4-D or 5-D input'),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match): call()

def test_empty_output_like_torch():
    assert qavg_pool3d(QArray(np.zeros((2, 3, 1, 1, 1), np.uint8), 0.1, 3, 'quint8'), 2).shape == (2, 3, 0, 0, 0)

def test_mean_threads_split_channels():
    """From 32,768 elements torch gives threads ranges of channels: with C = 37 on 5 threads the last range holds
    5 channels and sums 32..35 in (P6a) instead of (P6b). Every channel averages to an exact tie (a, a+1 half each)."""
    rng = np.random.default_rng(0)
    q = np.stack([rng.permutation(np.arange(930) % 2 + 20 + 3 * c) for c in range(37)]).reshape(1, 37, 30, 31)
    x = QArray(q.astype(np.uint8), 0.3, 0, 'quint8')
    t = x.to_torch().contiguous(memory_format=torch.channels_last)
    threads, ours = torch.get_num_threads(), {}
    try:
        for n in (1, 5):
            torch.set_num_threads(n)
            theirs = torch.mean(t, (-1, -2)).int_repr().numpy()
            ours[n] = qmean(x, (-1, -2), channels_last=True, num_threads=n).int_repr
            assert np.array_equal(ours[n], theirs)
            assert np.array_equal(qmean(t, (-1, -2), num_threads=n).int_repr, theirs)
    finally: torch.set_num_threads(threads)
    assert list(np.nonzero(ours[1] != ours[5])[1]) == [32, 33, 34]

@pytest.mark.parametrize('engine', supported_engines())
def test_adaptive_avg_pool3d_to_one_pixel(engine):
    "1x1x1 is torch's quantized mean: (P5) for contiguous inputs, (P6) for channels-last ones, on every engine."
    torch.backends.quantized.engine = engine
    rng = np.random.default_rng(1)
    for dtype, st in (('quint8', np.uint8), ('qint8', np.int8), ('qint32', np.int32)):
        x = QArray(rng.integers(-100 if dtype != 'quint8' else 0, 100, (2, 33, 4, 5, 6)).astype(st), 0.0371, 3, dtype)
        for t in (x.to_torch(), x.to_torch().contiguous(memory_format=torch.channels_last_3d)):
            theirs = torch.nn.functional.adaptive_avg_pool3d(t, 1).int_repr().numpy()
            assert np.array_equal(qadaptive_avg_pool3d(t, 1).int_repr, theirs)
            assert np.array_equal(qadaptive_avg_pool3d(x, (1, 1, 1), channels_last=not t.is_contiguous()).int_repr, theirs)

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


def test_avg_pool1d_every_engine_and_capability():
    rows = verify(10_000, kernels=['avg_pool1d'], capabilities=supported_capabilities(), out=print)
    assert len(rows) == len(supported_engines()) * len(supported_capabilities()), rows
    assert all(r['mismatches'] == 0 and r['compared'] >= 10_000 for r in rows), rows

def test_avg_pool1d_channels_last_input_runs_the_nhwc_kernel():
    F = torch.nn.functional
    x = torch.quantize_per_tensor(torch.randn(2, 19, 13), 0.0371, 60, torch.quint8)
    for t in (x, x.permute(0, 2, 1).contiguous().permute(0, 2, 1)):              # NCL, and (N, L, C) memory: (P3)
        theirs = F.avg_pool1d(t, 3, 2, 1, ceil_mode=True).int_repr().numpy()
        assert np.array_equal(qavg_pool1d(t, 3, 2, 1, ceil_mode=True, engine='x86').int_repr, theirs)
        x2 = QArray(x.int_repr().numpy(), 0.0371, 60, 'quint8')
        assert np.array_equal(qavg_pool1d(x2, 3, 2, 1, ceil_mode=True, channels_last=not t.is_contiguous()).int_repr, theirs)

def test_layout_fault_p7():
    "torch's output for a channels-last input whose size-1 dimension has an off-pattern stride is qnb's, permuted."
    F = torch.nn.functional
    b = torch.quantize_per_tensor(torch.tensor([1., 3., 2., 4.]).reshape(1, 2, 1, 2), 1.0, 0, torch.quint8)
    x = b.permute(0, 3, 2, 1)                                                   # (1, 2, 1, 2), strides (4, 1, 2, 2)
    assert writes_permuted(x.shape, x.stride()) and x.int_repr()[0, :, 0].tolist() == [[1, 2], [3, 4]]
    for f, g in ((lambda t: F.max_pool2d(t, 1), lambda t: qmax_pool2d(t, 1)),
                 (lambda t: F.avg_pool2d(t, 1), lambda t: qavg_pool2d(t, 1)),
                 (lambda t: F.adaptive_avg_pool2d(t, (1, 2)), lambda t: qadaptive_avg_pool2d(t, (1, 2)))):
        assert f(x).int_repr()[0, :, 0].tolist() == [[1, 3], [2, 4]]             # torch: NHWC order in an NCHW buffer
        assert g(x).int_repr[0, :, 0].tolist() == [[1, 2], [3, 4]]               # qnb: the values
        assert f(x.clone(memory_format=torch.channels_last)).int_repr()[0, :, 0].tolist() == [[1, 2], [3, 4]]
    rng = np.random.default_rng(0)                                              # 3-D: a size-1 batch stored innermost
    q = QArray(rng.integers(0, 256, (1, 3, 2, 2, 2)).astype(np.uint8), 0.1, 3, 'quint8')
    x = strided_torch(q, (2, 3, 4, 1, 0))
    assert writes_permuted(x.shape, x.stride())
    ours, theirs = qmax_pool3d(x, 1).int_repr, F.max_pool3d(x, 1).int_repr().numpy()
    assert np.array_equal(theirs.reshape(-1), np.moveaxis(ours, 1, -1).reshape(-1)) and not np.array_equal(ours, theirs)

def test_unbatched_adaptive_avg_pool3d_reproduces_torch():
    "(P4u): torch's integers for an unbatched input with D = 1 or H*W = 1 (deterministic, though not the averages)."
    rng = np.random.default_rng(3)
    wrong = 0
    for shape, out in (((11, 1, 3, 5), (1, 2, 3)), ((17, 4, 1, 1), (3, 1, 2)), ((9, 1, 6, 1), (1, 4, 1)), ((3, 1, 2, 2), (1, 3, 3))):
        for dtype in ('quint8', 'qint8', 'qint32'):
            q = rng.integers(-100, 100, shape) + (128 if dtype == 'quint8' else 0)
            x = QArray(q.astype({'quint8': np.uint8, 'qint8': np.int8, 'qint32': np.int32}[dtype]), 0.1, 5, dtype)
            theirs = torch.nn.functional.adaptive_avg_pool3d(x.to_torch(), out).int_repr().numpy()
            ours = qadaptive_avg_pool3d(x, out).int_repr
            assert np.array_equal(ours, theirs), (shape, out, dtype)
            batched = qadaptive_avg_pool3d(QArray(x.int_repr[None], 0.1, 5, dtype), out).int_repr[0]
            wrong += not np.array_equal(ours, batched)
    assert wrong >= 10                                                           # torch's unbatched output is not the average
