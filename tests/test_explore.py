"""explore: the plotting functions draw, the widgets build, and the per-layer plot's qnb-vs-torch count is 0."""
import numpy as np
import pytest
import torch
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from qnb.explore import (quantizer_curve, plot_quantizer, quantizer_explorer, requantization_outputs, plot_requantization,
                         requantization_explorer, layer_errors, plot_layer_errors, layer_error_explorer)
from qnb.requantize import requantize_fp32, requantize_onednn, requantize_fixedpoint, quantize_multiplier
from qnb.verify import supported_engines
from _models import small_model

@pytest.mark.parametrize('scale, zp, dtype', [(0.1, 128, 'quint8'), (0.03, -5, 'qint8'), (2.0 ** -6, 7, 'qint32')])
def test_quantizer(scale, zp, dtype):
    x, q, xr, err = quantizer_curve(scale, zp, dtype)
    inside = (q > q.min()) & (q < q.max())
    assert np.abs(err[inside]).max() <= scale / 2 * (1 + 1e-5)
    assert np.all(np.diff(q) >= 0)                               # monotone staircase
    fig = plot_quantizer(scale, zp, dtype); assert len(fig.axes) == 3; plt.close(fig)

def test_requantization():
    acc = np.arange(-20000, 20000)
    m = 0.00735599967
    out = requantization_outputs(acc, m, 3)
    np.testing.assert_array_equal(out['fp32'], requantize_fp32(acc, m, 3))
    np.testing.assert_array_equal(out['onednn'], requantize_onednn(acc, m, 1.0, 1.0, 3))
    np.testing.assert_array_equal(out['fixedpoint'], requantize_fixedpoint(acc, *quantize_multiplier(m), 3))
    assert np.all(np.abs(out['fp32'] - out['real'].clip(0, 255)) <= 0.5 + 1e-3)
    fig = plot_requantization(3059, m, 0); assert 'differ on' in fig.axes[0].get_title(); plt.close(fig)

def test_widgets_build():
    from ipywidgets import interactive
    for w in (quantizer_explorer(), requantization_explorer()): assert isinstance(w, interactive)
    plt.close('all')

@pytest.mark.parametrize('engine', supported_engines())
def test_layer_errors(engine):
    float_net, qnet = small_model(engine, relu6=engine != 'qnnpack', pool=engine != 'qnnpack', with_float=True)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    rows = layer_errors(qnet, float_net, x, engine)
    assert {'conv1', 'dw', 'fc1', 'fc2'} <= {r['layer'] for r in rows}
    assert all(r['torch_mismatches'] == 0 for r in rows), rows
    assert all(np.isfinite(r['max_lsb']) for r in rows), rows        # (its size is quantization's, clamping included)
    fig = plot_layer_errors(rows); plt.close(fig)
    assert isinstance(layer_error_explorer(qnet, float_net, (1, 3, 8, 8), engine), object)
    plt.close('all')
