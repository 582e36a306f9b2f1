"""Sweeps for quantize/dequantize and requantize against the installed torch, on every engine.

The sweep logic lives in `qnb.verify` (shared with `qnb verify`); these tests choose sizes:
at least 1e6 values per dtype x scale family for quantize."""
import subprocess, sys, zlib
import numpy as np
import pytest
from qnb.verify import CHECKS, SCALE_FAMILIES, supported_engines, check_quantize_per_tensor, check_quantize_per_channel
from qnb.core import QDTYPES, quantize_per_tensor, quantize_per_channel, QArray, fma_f32
from qnb.requantize import quantize_multiplier, requantize
from fractions import Fraction

ENGINES = supported_engines()

@pytest.mark.parametrize('dtype', list(QDTYPES))
@pytest.mark.parametrize('family', SCALE_FAMILIES)
def test_quantize_per_tensor_million(dtype, family):
    r = check_quantize_per_tensor('x86', np.random.default_rng(zlib.crc32(f'{dtype}/{family}'.encode())), 1_000_000, (dtype,), (family,))
    assert r.compared >= 1_000_000 and r.mismatches == 0, r

@pytest.mark.parametrize('dtype', list(QDTYPES))
@pytest.mark.parametrize('family', SCALE_FAMILIES)
def test_quantize_per_channel_million(dtype, family):
    r = check_quantize_per_channel('x86', np.random.default_rng(zlib.crc32(f'{dtype}/{family}/pc'.encode())), 1_000_000, (dtype,), (family,))
    assert r.compared >= 1_000_000 and r.mismatches == 0, r

@pytest.mark.parametrize('engine', ENGINES)
@pytest.mark.parametrize('kernel', ['quantize_per_tensor', 'quantize_per_channel', 'dequantize'])
def test_every_engine(kernel, engine):
    r = CHECKS[kernel](engine, np.random.default_rng(1), 50_000)
    assert r.mismatches == 0, r

@pytest.mark.parametrize('engine', ENGINES)
def test_requantize_through_linear(engine):
    r = CHECKS['requantize'](engine, np.random.default_rng(2), 150_000)
    assert r.mismatches == 0, r

def _round_to_f32(v: Fraction) -> np.float32:
    "Correctly rounded Fraction -> float32 (ties to even), for checking fma_f32."
    f = np.float32(float(v))
    cands = [f, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf))]
    best = min(cands, key=lambda c: (abs(Fraction(float(c)) - v), int(np.array(c).view(np.int32)) & 1))
    return best

def test_fma_f32_is_correctly_rounded():
    rng = np.random.default_rng(3)
    a = (rng.standard_normal(3000) * 2.0 ** rng.integers(-30, 30, 3000)).astype(np.float32)
    b = (rng.standard_normal(3000) * 2.0 ** rng.integers(-30, 30, 3000)).astype(np.float32)
    c = np.where(rng.random(3000) < 0.5, -(a.astype(np.float64) * b), rng.standard_normal(3000)).astype(np.float32)
    ours = fma_f32(a, b, c)
    for x, y, z, o in zip(a, b, c, ours):
        assert o == _round_to_f32(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))), (x, y, z)

@pytest.mark.parametrize('bad, match', [
    (dict(scale=0.0), 'scale must be a finite number > 0'), (dict(scale=float('nan')), 'scale'),
    (dict(scale=float('inf')), 'scale'), (dict(scale=-1.0), 'scale'),
    (dict(zero_point=256), r'zero_point must be in \[0, 255\]'), (dict(zero_point=-1), 'zero_point'),
    (dict(zero_point=1.5), 'zero_point must be an integer'), (dict(dtype='int16'), 'dtype must be one of'),
])
def test_quantize_per_tensor_rejects(bad, match):
    args = dict(x=[1.0], scale=0.1, zero_point=3, dtype='quint8') | bad
    with pytest.raises(ValueError, match=match):
        quantize_per_tensor(**args)

@pytest.mark.parametrize('bad, match', [
    (dict(scales=[0.1]), r'scales must have one entry per channel \(2\)'),
    (dict(zero_points=[0, 300]), 'zero_points must be in'),
    (dict(zero_points=[0.5, 1.0]), 'zero_points must be integers'),
    (dict(axis=2), r'axis must be in \[0, 1\]'), (dict(axis=-1), 'no negative axis'), (dict(scales=[0.1, 0.0]), 'index 1'),
])
def test_quantize_per_channel_rejects(bad, match):
    args = dict(x=np.ones((2, 3)), scales=[0.1, 0.2], zero_points=[0, 1], axis=0, dtype='quint8') | bad
    with pytest.raises(ValueError, match=match):
        quantize_per_channel(**args)

def test_unknown_engine_and_scheme():
    from qnb.requantize import requantization_multiplier
    with pytest.raises(ValueError, match='engine must be one of'):
        requantization_multiplier(0.1, 0.1, 0.1, engine='tensorrt')
    with pytest.raises(ValueError, match='scheme must be one of'):
        requantize([1], 0.5, 0, 'quint8', scheme='float')
    with pytest.raises(ValueError, match='real multiplier'):
        quantize_multiplier(0.0)

def test_qarray_roundtrip_and_types():
    import torch
    t = torch.quantize_per_channel(torch.randn(3, 4), torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64), torch.tensor([1, 2, 3]), 0, torch.quint8)
    q = QArray.from_torch(t)
    assert q.axis == 0 and q.int_repr.dtype == np.uint8 and q.scale.dtype == np.float64 and q.zero_point.dtype == np.int64
    assert torch.equal(q.to_torch().int_repr(), t.int_repr())
    with pytest.raises(TypeError, match='int_repr must be uint8'):
        QArray(np.zeros(3, np.int8), 0.1, 0, 'quint8')

def test_cli_quick_exit_code():
    p = subprocess.run([sys.executable, '-c', 'import sys; from qnb.cli import main; sys.exit(main())', 'verify', '--quick',
                        '--kernels', 'quantize_per_tensor,requantize'], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert 'all bit-exact' in p.stdout
