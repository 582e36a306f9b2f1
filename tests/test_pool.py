"""Max pooling against the installed torch, and bad input."""
import numpy as np
import pytest
from qnb.core import QArray
from qnb.pool import qmax_pool2d, qmax_pool3d, qavg_pool2d, qadaptive_avg_pool2d, check_max_pool, check_avg_pool2d, check_adaptive_avg_pool
from qnb.verify import supported_engines

@pytest.mark.parametrize('engine', [e for e in supported_engines() if e != 'qnnpack'])
def test_max_pool_sweep(engine):
    r = check_max_pool(engine, np.random.default_rng(7), 300_000)
    assert r.mismatches == 0 and r.compared >= 300_000, r

@pytest.mark.parametrize('engine', [e for e in supported_engines() if e != 'qnnpack'])
def test_avg_pool2d_sweep(engine):
    r = check_avg_pool2d(engine, np.random.default_rng(8), 300_000)
    assert r.mismatches == 0 and r.compared >= 300_000, r

@pytest.mark.parametrize('engine', supported_engines())
def test_adaptive_avg_pool_sweep(engine):
    r = check_adaptive_avg_pool(engine, np.random.default_rng(9), 200_000)
    assert r.mismatches == 0 and r.compared >= 200_000, r

X = QArray(np.zeros((1, 2, 5, 5), np.uint8), 0.1, 3, 'quint8')

@pytest.mark.parametrize('call, match', [
    (lambda: qmax_pool2d(X, 3, padding=2), 'padding must be at most half of kernel_size'),
    (lambda: qmax_pool2d(X, 7), 'output size .* is too small'),
    (lambda: qmax_pool3d(X, 2), 'must have 5 dimensions'),
    (lambda: qmax_pool2d(X, 2, engine='qnnpack'), "engine 'qnnpack'"),
    (lambda: qmax_pool2d(X, 0), 'kernel_size must be >= 1'),
    (lambda: qavg_pool2d(X, 3, divisor_override=0), 'divisor_override must be a non-zero int'),
    (lambda: qadaptive_avg_pool2d(X, 0), 'output_size must be >= 1'),
    (lambda: qadaptive_avg_pool2d(QArray(np.zeros((1, 2, 1, 1), np.uint8), 0.1, 3, 'quint8'), 1), 'channels-last'),
    (lambda: qavg_pool2d(X, 2, engine='qnnpack'), "engine 'qnnpack'"),
    (lambda: qavg_pool2d(QArray(np.zeros((1, 1, 5, 5), np.uint8), 0.1, 3, 'quint8'), 2), 'channels-last'),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match): call()
