"""Upsampling (nearest, nearest-exact, bilinear) and interpolate against the installed torch under every CPU
capability, shape operations that keep qparams, and bad input."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from qnb.core import QArray
from qnb.upsample import (qinterpolate, qupsample_nearest2d, qupsample_nearest3d, qupsample_bilinear2d, nearest_source,
                          interpolate_size, is_channels_last)
from qnb.verify import verify, supported_capabilities

def test_upsample_sweep_every_capability():
    rows = verify(150_000, engines=['x86', 'qnnpack'], kernels=['upsample'], capabilities=supported_capabilities(), out=print)   # engine-independent
    assert rows and all(r['mismatches'] == 0 and r['compared'] >= 150_000 for r in rows), rows

@pytest.mark.parametrize('mode, align', [('nearest', None), ('nearest-exact', None), ('bilinear', False), ('bilinear', True), ('area', None)])
@pytest.mark.parametrize('kw', [dict(size=(9, 4)), dict(size=3), dict(scale_factor=1.7), dict(scale_factor=(0.6, 2.5), recompute_scale_factor=True),
                                dict(scale_factor=(1.15, 1.0), recompute_scale_factor=False)])
@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_interpolate_modes(mode, align, kw, layout):
    x = torch.quantize_per_tensor(torch.randn(2, 9, 5, 7), 0.04, 120, torch.quint8)
    if layout == 'channels_last': x = x.contiguous(memory_format=torch.channels_last)
    y = qinterpolate(x, mode=mode, align_corners=align, **kw)
    t = F.interpolate(x, mode=mode, align_corners=align, **kw)
    assert (y.scale, y.zero_point) == (t.q_scale(), t.q_zero_point())
    assert np.array_equal(y.int_repr, t.int_repr().numpy())

def test_area_of_3d_input():
    x = torch.quantize_per_tensor(torch.randn(2, 3, 11), 0.04, 120, torch.quint8)
    assert np.array_equal(qinterpolate(x, size=4, mode='area').int_repr, F.interpolate(x, size=4, mode='area').int_repr().numpy())

def test_nearest_exact_rounds_the_double_product_to_float():
    assert nearest_source(2, 25, exact=True)[12] == 1                 # 12.5 * fl32(0.08) = 0.99999998 -> 1.0f

def test_channels_last_detection():
    x = torch.quantize_per_tensor(torch.randn(1, 3, 4, 4), 0.1, 0, torch.quint8)
    assert not is_channels_last(x) and is_channels_last(x.contiguous(memory_format=torch.channels_last))
    assert is_channels_last(QArray(np.zeros((1, 1, 4, 4), np.uint8), 0.1, 0, 'quint8'))          # C = 1: both layouts

X = QArray(np.zeros((1, 2, 3, 3), np.uint8), 0.1, 3, 'quint8')
X5 = QArray(np.zeros((1, 2, 3, 3, 3), np.uint8), 0.1, 3, 'quint8')

@pytest.mark.parametrize('call, exc, match', [
    (lambda: qinterpolate(np.zeros((1, 2, 3, 3)), size=4), TypeError, 'input must be a QArray'),
    (lambda: qinterpolate(X, size=4, mode='bicubic'), ValueError, "mode must be one of nearest, nearest-exact, bilinear, area"),
    (lambda: qinterpolate(X, size=4, mode='nearest', align_corners=True), ValueError, 'align_corners can only be set'),
    (lambda: qinterpolate(X, size=4, scale_factor=2.0), ValueError, 'only one of size or scale_factor'),
    (lambda: qinterpolate(X), ValueError, 'either size or scale_factor'),
    (lambda: qinterpolate(X, scale_factor=0.0), ValueError, r'scale_factor must be finite and > 0'),
    (lambda: qinterpolate(X, scale_factor=-2.0), ValueError, r'scale_factor must be finite and > 0'),
    (lambda: qinterpolate(X, scale_factor=float('inf')), ValueError, r'scale_factor must be finite and > 0'),
    (lambda: qinterpolate(X, scale_factor=(2.0, 2.0, 2.0)), ValueError, 'scale_factor must be a number or 2 numbers'),
    (lambda: qinterpolate(X, scale_factor='2'), TypeError, 'scale_factor must be a real number'),
    (lambda: qinterpolate(X, scale_factor=(2.0, '2')), TypeError, 'scale_factor must hold real numbers'),
    (lambda: qinterpolate(X, size=(4, 4, 4)), ValueError, 'size must be an int or 2 ints'),
    (lambda: qinterpolate(X, size=4.0), TypeError, 'size must be an int'),
    (lambda: qinterpolate(X, size=4, recompute_scale_factor=True), ValueError, 'recompute_scale_factor is not meaningful'),
    (lambda: qinterpolate(X, size=4, mode='bilinear', antialias=True), ValueError, 'antialias'),
    (lambda: qinterpolate(X5, size=4, mode='bilinear'), ValueError, "mode 'bilinear' takes 4-D"),
    (lambda: qinterpolate(QArray(np.zeros((1, 2, 3), np.uint8), 0.1, 3, 'quint8'), size=4), ValueError, "mode 'nearest' takes 4-D or 5-D"),
    (lambda: qinterpolate(X, scale_factor=0.2), ValueError, 'output_size must be >= 1'),
    (lambda: qupsample_nearest2d(X, (0, 4)), ValueError, 'output_size must be >= 1'),
    (lambda: qupsample_nearest3d(X5, (2, 2, 0)), ValueError, 'output width must be >= 1'),
    (lambda: qupsample_nearest3d(QArray(np.zeros((0, 2, 3, 3, 3), np.uint8), 0.1, 3, 'quint8'), 4), ValueError, 'batch >= 1'),
    (lambda: qupsample_nearest2d(QArray(np.zeros((1, 0, 3, 3), np.uint8), 0.1, 3, 'quint8'), 4), ValueError, 'at least one channel'),
    (lambda: qupsample_bilinear2d(QArray(np.zeros((1, 2, 0, 3), np.uint8), 0.1, 3, 'quint8'), 4), ValueError, 'spatial sizes must be >= 1'),
    (lambda: qupsample_bilinear2d(X, 4, align_corners=None), TypeError, 'align_corners must be a bool'),
    (lambda: qupsample_bilinear2d(X, 4, channels_last='yes'), TypeError, 'channels_last must be None or a bool'),
    (lambda: qupsample_bilinear2d(X, 4, scales=(1.0, 2.0, 3.0)), ValueError, 'scales must be None'),
    (lambda: qupsample_nearest2d(QArray(np.zeros((1, 2, 3, 3), np.uint8), [0.1, 0.2], [3, 4], 'quint8', axis=1), 4), ValueError, 'per tensor'),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match): call()

def test_empty_outputs_torch_allows():
    assert qupsample_nearest2d(QArray(np.zeros((0, 2, 3, 3), np.uint8), 0.1, 3, 'quint8'), 4).shape == (0, 2, 4, 4)
    assert qupsample_nearest3d(X5, (0, 2, 4)).shape == (1, 2, 0, 2, 4)                # torch: empty, no error
    assert interpolate_size((3, 3), scale_factor=0.2) == ((0, 0), (0.2, 0.2))

@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_area_of_5d_input(layout):
    x = torch.quantize_per_tensor(torch.randn(2, 9, 5, 4, 6), 0.04, 120, torch.quint8)
    if layout == 'channels_last': x = x.contiguous(memory_format=torch.channels_last_3d)
    for size in ((3, 2, 4), (5, 1, 2)):
        assert np.array_equal(qinterpolate(x, size=size, mode='area').int_repr, F.interpolate(x, size=size, mode='area').int_repr().numpy())

def test_layout_fault_p7_every_mode():
    "A channels-last input whose size-1 dimension has an off-pattern stride: torch permutes, qnb returns the values."
    import torch.nn.functional as F
    from qnb.upsample import qinterpolate
    b = torch.quantize_per_tensor(torch.tensor([1., 3., 2., 4.]).reshape(1, 2, 1, 2), 1.0, 0, torch.quint8)
    x = b.permute(0, 3, 2, 1)                                                   # (1, 2, 1, 2), strides (4, 1, 2, 2)
    for mode in ('nearest', 'nearest-exact', 'bilinear'):
        ours = qinterpolate(x, size=(1, 4), mode=mode).int_repr
        theirs = F.interpolate(x, size=(1, 4), mode=mode).int_repr().numpy()
        right = F.interpolate(x.clone(memory_format=torch.channels_last), size=(1, 4), mode=mode).int_repr().numpy()
        assert np.array_equal(ours, right) and not np.array_equal(ours, theirs), mode
        assert np.array_equal(theirs.reshape(-1), np.moveaxis(ours, 1, -1).reshape(-1)), mode
