"""relu / relu6 / hardtanh / clamp against the installed torch on every engine, and bad input."""
import zlib
import numpy as np
import pytest
from qnb.core import QArray
from qnb.activation import qclamp, qhardtanh, qrelu6, check_clamp, quantize_bound
from qnb.verify import supported_engines

@pytest.mark.parametrize('engine', supported_engines())
def test_clamp_sweep(engine):
    r = check_clamp(engine, np.random.default_rng(zlib.crc32(f'clamp/{engine}'.encode())), 300_000)
    assert r.mismatches == 0 and r.compared >= 300_000, r

def test_seed_002_relu6_bound_saturates():
    assert quantize_bound(6.0, 0.019743409007787704, 0, 'quint8') == 255

X = QArray(np.arange(10, dtype=np.uint8).reshape(2, 5), 0.1, 3, 'quint8')

def test_clamp_min_above_max_is_max_like_torch():
    assert (qclamp(X, 0.5, 0.2, engine='fbgemm').int_repr == quantize_bound(0.2, 0.1, 3, 'quint8')).all()

@pytest.mark.parametrize('call, exc, match', [
    (lambda: qhardtanh(X, 1.0, 0.5), ValueError, 'min_val must be <= max_val'),
    (lambda: qclamp(X, 0.5, 0.2, engine='qnnpack'), ValueError, "min must quantize to <= max on engine 'qnnpack'"),
    (lambda: qclamp(X, None, None), ValueError, 'at least one of min and max'),
    (lambda: qclamp(X, float('nan'), 1.0), ValueError, 'min must be a real number'),
    (lambda: qclamp(X, 0.5, None, engine='qnnpack'), ValueError, 'min and max must both be given'),
    (lambda: qrelu6(X.int_repr), TypeError, 'expected a QArray'),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match): call()
