"""add / add_relu / mul / mul_relu against the installed torch under every CPU capability, and bad input."""
import numpy as np
import pytest
from qnb.core import QArray
from qnb.elementwise import qadd, qmul, qcat, vector_elements, check_cat
from qnb.verify import verify, supported_capabilities

def test_add_mul_sweep_every_capability():
    rows = verify(500_000, kernels=['add_mul'], capabilities=supported_capabilities(), out=print)
    assert rows and all(r['mismatches'] == 0 and r['compared'] >= 500_000 for r in rows), rows

def test_cat_sweep():
    for engine in ('fbgemm', 'qnnpack'):
        r = check_cat(engine, np.random.default_rng(11), 200_000)
        assert r.mismatches == 0 and r.compared >= 200_000, r

A = QArray(np.zeros((2, 5), np.uint8), 0.1, 3, 'quint8')

@pytest.mark.parametrize('call, exc, match', [
    (lambda: qadd(A, QArray(np.zeros((2, 4), np.uint8), 0.1, 3, 'quint8'), 0.2, 0), ValueError, 'same shape'),
    (lambda: qadd(A, QArray(np.zeros((2, 5), np.int8), 0.1, 3, 'qint8'), 0.2, 0), TypeError, 'same dtype'),
    (lambda: qmul(A, A, 0.0, 0), ValueError, 'scale must be a finite number > 0'),
    (lambda: qadd(A, A, 0.1, 255, relu=True, engine='qnnpack'), ValueError, 'zero_point must be < 255'),
    (lambda: qadd(A, A, 1e-5, 0, engine='qnnpack'), ValueError, r'must be in \[2\*\*-14, 2\*\*8\)'),
    (lambda: qcat([A, QArray(np.zeros((3, 4), np.uint8), 0.1, 3, 'quint8')], 0), ValueError, 'differ outside dim 0'),
    (lambda: qcat([A, A], 2), ValueError, r'dim must be in \[-2, 1\]'),
    (lambda: qcat([], 0), ValueError, 'must not be empty'),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match): call()

def test_vector_split_follows_threads():
    assert vector_elements(100_000, 1).sum() == (100_000 // 64) * 64
    assert vector_elements(100_000, 2).sum() == 2 * ((50_000 // 64) * 64)
