"""qnb.xnnpack: ExecuTorch's XNNPACK int8 kernels. The arithmetic on NumPy alone (integers recorded from ExecuTorch 1.5.1);
the runtime comparisons skip without executorch (pip install -e '.[executorch]')."""
import numpy as np
import pytest
from qnb import xnnpack as X


def test_division_not_reciprocal():
    "(X2): the multiplier divides by the output scale; the runtime's -5 where a reciprocal would tie to -4."
    m = X.conv_scale(0.040521714836359024, np.float32([0.00665758503600955]), 0.15347298979759216)[0]
    assert X.requantize(-2560, m, 0) == -5


def test_recorded_integers():
    "Small cases whose integers were recorded from the runtime."
    x = np.arange(-60, 60, 5, dtype=np.int8).reshape(1, 2, 3, 4)
    w = np.array([[[[3, -5], [7, 1]]], [[[-127, 2], [9, 127]]]], np.int8)
    y = X.conv(x, 0.05, 3, w, np.float32([0.01, 0.002]), np.float32([0.3, -0.7]), 0.02, -10, padding=1, groups=2)
    assert y.ravel().tolist() == [3, -7, -6, -5, -3, 12, -1, 0, 1, -3, 10, 2, 3, 4, 2, 8, 6, 5, 5, 4, -47, -44, -40, -37,
                                  -44, -34, -28, -28, -28, -51, -21, -27, -27, -27, -63, -45, -68, -71, -74, -78]
    assert X.add(np.int8([5, -5, 7]), 0.5, 0, np.int8([0, 0, 0]), 0.5, 0, 1.0, 0).tolist() == [3, -2, 4]
    assert X.mean_hw(np.int8([[[[1, 0], [1, 0]]]]), 0.1, 1, 0.1, 0).ravel().tolist() == [0]
    assert X.max_pool(np.int8([[[[-128, -100, 5], [7, -128, 0], [1, 2, 3]]]]), 2, 2, 1).ravel().tolist() == [-128, 5, 7, 3]
    assert X.clamp(np.int8([-128, -3, 0, 50, 127]), -0.3, 0.6, 0.1, 0).tolist() == [-3, -3, 0, 6, 6]


def test_bad_input():
    with pytest.raises(ValueError, match='out_zero_point'): X.add(np.int8([1]), 0.1, 0, np.int8([1]), 0.1, 0, 0.1, 200)
    with pytest.raises(ValueError, match='2\\*\\*-10'): X.add(np.int8([1]), 1e-4, 0, np.int8([1]), 1e-4, 0, 1.0, 0)
    with pytest.raises(TypeError, match='int8'): X.clamp(np.uint8([1]), 0, 1, 0.1, 0)
    with pytest.raises(ValueError, match='< 256'): X.conv_scale(1.0, np.float32([1.0]), 1e-3)


def test_ops_against_runtime():
    pytest.importorskip('executorch', reason='executorch not installed (pip install -e ".[executorch]")')
    rng = np.random.default_rng(22)
    for op in X.XNNPACK_CASES:
        r = X.sweep(op, rng, 1)
        assert r.mismatches == 0, (op, r)


def test_model_against_runtime():
    pytest.importorskip('executorch', reason='executorch not installed (pip install -e ".[executorch]")')
    import torch, warnings
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, convert_pt2e
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config
    nn = torch.nn
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.dw = nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, 1, 1, groups=8)
            self.fc = nn.Linear(16, 5)
        def forward(self, x):
            x = torch.relu(self.c1(x))
            y = nn.functional.hardtanh(self.dw(x), 0.0, 6.0)
            x = torch.relu(x + self.c2(y))
            x = nn.functional.max_pool2d(x, 2)
            x = torch.cat([x * x, x], 1)
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        p = prepare_pt2e(torch.export.export(Net().eval(), (x,)).module(), q)
        for _ in range(3): p(torch.randn(2, 3, 16, 16))
        gm = convert_pt2e(p)
    buf = X.lower_pt2e(gm, x)
    for i in range(5):
        r = X.compare(gm, torch.randn(2, 3, 16, 16) * (1 + i), buf)
        assert r.compared == 10 and r.mismatches == 0, r

def test_pt2e_lowering_xnnpack_dispatches_here():
    "`qnb.pt2e.run(gm, x, lowering='xnnpack')` (and qnb.model.run) is qnb.xnnpack.run; without executorch, compare says what to install."
    torch = pytest.importorskip('torch')
    pytest.importorskip('torchao')
    from qnb import pt2e as P, xnnpack as X
    from qnb.model import run as model_run
    gm, x = P.build_pt2e('resnet', 'xnnpack')
    ours = P.run(gm, x, lowering='xnnpack')
    ours = ours[0] if isinstance(ours, (list, tuple)) else ours
    direct = X.run(gm, x)
    direct = direct[0] if isinstance(direct, list) else direct
    assert isinstance(ours, torch.Tensor) and np.array_equal(ours.numpy(), direct)
    m = model_run(gm, x, lowering='xnnpack')
    assert np.array_equal((m[0] if isinstance(m, (list, tuple)) else m).numpy(), direct)
    if not X.executorch_available():
        with pytest.raises(ImportError, match='executorch'): P.compare(gm, x, lowering='xnnpack')
