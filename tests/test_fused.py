"""Conv + add (oneDNN's sum post-op) against torch, and a converted FX model with ConvAdd2d layers."""
import numpy as np
import pytest
import torch
from qnb.fused import qconv2d_add

def _case(rng):
    N, C, O, H = int(rng.integers(1, 3)), int(rng.integers(1, 9)), int(rng.integers(1, 17)), int(rng.integers(3, 10))
    k = int(rng.choice([1, 3])); pad = k // 2
    pick = lambda lo, hi: float(2.0 ** rng.integers(lo, hi)) if rng.random() < 0.5 else float(np.exp(rng.uniform(lo * 0.7, hi * 0.7)))
    sx, sa, sy = pick(-7, -2), pick(-6, -1), pick(-4, 1)
    zx, za, zy = (int(v) for v in rng.choice([0, 255, *rng.integers(0, 256, 3)], 3))
    x = torch.quantize_per_tensor(torch.from_numpy(rng.standard_normal((N, C, H, H)).astype(np.float32)) * sx * 40, sx, zx, torch.quint8)
    a = torch.quantize_per_tensor(torch.from_numpy(rng.standard_normal((N, O, H, H)).astype(np.float32)) * sa * 40, sa, za, torch.quint8)
    if rng.random() < 0.5: a = a.contiguous(memory_format=torch.channels_last)
    ws = torch.from_numpy(rng.uniform(0.002, 0.03, O))
    w = torch.quantize_per_channel(torch.from_numpy(rng.standard_normal((O, C, k, k)).astype(np.float32)) * 0.05, ws,
                                   torch.zeros(O, dtype=torch.long), 0, torch.qint8)
    b = torch.from_numpy(rng.standard_normal(O).astype(np.float32)) if rng.random() < 0.8 else None
    return x, a, w, b, pad, sy, zy, bool(rng.integers(0, 2))

@pytest.mark.skipif('onednn' not in torch.backends.quantized.supported_engines, reason='conv2d_add is onednn-only')
def test_conv_add_sweep():
    torch.backends.quantized.engine = 'onednn'
    rng = np.random.default_rng(21)
    compared = bad = faults = 0
    for _ in range(250):
        x, a, w, b, pad, sy, zy, relu = _case(rng)
        ours = qconv2d_add(x, a, w, b, 1, pad, scale=sy, zero_point=zy, relu=relu, engine='onednn').int_repr
        packed = torch.ops.quantized.conv2d_prepack(w, b, [1, 1], [pad, pad], [1, 1], 1)   # fresh: torch caches post-ops
        op = torch.ops.quantized.conv2d_add_relu if relu else torch.ops.quantized.conv2d_add
        theirs = op(x, a.clone(), packed, sy, zy).int_repr().numpy()
        if w.shape[0] == 1: faults += int((ours != theirs).any()); continue     # torch's single-channel fault
        compared += ours.size; bad += int((ours != theirs).sum())
    assert bad == 0 and compared > 100_000, (bad, compared, faults)

def test_conv_add_refusals():
    x = torch.quantize_per_tensor(torch.randn(1, 2, 4, 4), 0.1, 3, torch.quint8)
    w = torch.quantize_per_tensor(torch.randn(2, 2, 1, 1), 0.01, 0, torch.qint8)
    with pytest.raises(ValueError, match="on engine 'onednn' only"): qconv2d_add(x, x, w, engine='fbgemm')
    with pytest.raises(ValueError, match="accum must be a per-tensor quint8 tensor of the output's shape"):
        qconv2d_add(x, x[:, :1], w, engine='onednn')

@pytest.mark.skipif('onednn' not in torch.backends.quantized.supported_engines, reason='conv2d_add is onednn-only')
def test_conv_add_nonfinite_and_extreme_scales():
    "NaN/inf/huge biases and scales beyond float32: NaN gives 255 (ReLU: z_y); broken weight scales are qnb's real value."
    import itertools
    from qnb.conv import weight_scales_beyond_float32
    torch.backends.quantized.engine = 'onednn'
    g = torch.Generator().manual_seed(19)
    nan, inf = float('nan'), float('inf')
    compared = 0
    for sx, sw, sy, sa, relu, bias in itertools.product([0.05, 1e39, 1e20], [0.01, 1e20], [0.25, 1e-46, 1e39], [0.125, 1e39],
                                                        [False, True], [None, [nan, inf, -inf, 0.1], [3e38, -3e38, nan, 1.0]]):
        x = torch._make_per_tensor_quantized_tensor(torch.randint(0, 256, (1, 3, 5, 5), dtype=torch.uint8, generator=g), sx, 60)
        a = torch._make_per_tensor_quantized_tensor(torch.randint(0, 256, (1, 4, 5, 5), dtype=torch.uint8, generator=g), sa, 70)
        w = torch._make_per_tensor_quantized_tensor(torch.randint(-128, 128, (4, 3, 3, 3), dtype=torch.int8, generator=g), sw, 0)
        b = None if bias is None else torch.tensor(bias, dtype=torch.float32)
        packed = torch.ops.quantized.conv2d_prepack(w, b, [1, 1], [1, 1], [1, 1], 1)     # fresh: torch caches post-ops
        op = torch.ops.quantized.conv2d_add_relu if relu else torch.ops.quantized.conv2d_add
        theirs = op(x, a.clone(), packed, sy, 100).int_repr().numpy()
        ours = qconv2d_add(x, a, w, b, 1, 1, scale=sy, zero_point=100, relu=relu, engine='onednn').int_repr
        np.testing.assert_array_equal(ours, theirs)
        compared += ours.size
    assert compared > 10_000
    # a weight scale whose float32 is infinite: torch's reorder breaks the weights, qnb returns the real value
    assert weight_scales_beyond_float32(1e39, 4) is not None
