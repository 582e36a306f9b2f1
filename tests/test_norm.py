"""Layer/group/instance norm against the installed torch under every CPU capability, and bad input."""
import numpy as np
import pytest
from qnb.core import QArray
from qnb.norm import qlayer_norm, qgroup_norm, qinstance_norm
from qnb.verify import verify, supported_capabilities

def test_norm_sweep_every_capability():
    rows = verify(600_000, kernels=['norm'], capabilities=supported_capabilities(), out=print)
    assert rows and all(r['mismatches'] == 0 and r['compared'] >= 600_000 for r in rows), rows

X = QArray(np.zeros((2, 6, 4, 4), np.uint8), 0.1, 0, 'quint8')

@pytest.mark.parametrize('call, exc, match', [
    (lambda: qgroup_norm(X, 4, None, None, 1e-5, 0.1, 0), ValueError, 'num_groups must be a positive divisor of the 6 channels'),
    (lambda: qgroup_norm(X, 3, np.ones(5), None, 1e-5, 0.1, 0), ValueError, r'weight must have shape \(6,\)'),
    (lambda: qgroup_norm(X, 3, None, None, -1e-5, 0.1, 0), ValueError, 'eps must be a finite number >= 0'),
    (lambda: qgroup_norm(QArray(np.zeros((2, 6), np.uint8), 0.1, 0, 'quint8'), 3, None, None, 1e-5, 0.1, 0), ValueError, 'at least 3 dimensions'),
    (lambda: qinstance_norm(X, np.ones(6), np.zeros(7), 1e-5, 0.1, 0), ValueError, r'bias must have shape \(6,\)'),
    (lambda: qlayer_norm(X, (4, 5), None, None, 1e-5, 0.1, 0), ValueError, 'normalized_shape must match'),
    (lambda: qlayer_norm(X, (4, 4), np.ones((4, 4)), None, 1e-5, 0.0, 0), ValueError, 'scale must be a finite number > 0'),
    (lambda: qlayer_norm(X, (4, 4), None, None, 1e-5, 0.1, 256), ValueError, r'zero_point must be in \[0, 255\]'),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match): call()

def test_eps_zero_matches_torch():
    "torch accepts eps = 0, also for constant groups (variance 0)."
    import torch
    torch.manual_seed(0)
    w, b = torch.randn(4), torch.randn(4)
    for x in (torch.quantize_per_tensor(torch.rand(2, 4, 3, 5), 0.02, 60, torch.quint8),
              torch.quantize_per_tensor(torch.full((2, 4, 3, 5), 0.3), 0.02, 60, torch.quint8)):
        assert (qgroup_norm(x, 2, w, b, 0.0, 0.05, 100).int_repr == torch.ops.quantized.group_norm(x, 2, w, b, 0.0, 0.05, 100).int_repr().numpy()).all()
        assert (qinstance_norm(x, w, b, 0.0, 0.05, 100).int_repr == torch.ops.quantized.instance_norm(x, w, b, 0.0, 0.05, 100).int_repr().numpy()).all()
        assert (qlayer_norm(x, [5], None, None, 0.0, 0.05, 100).int_repr == torch.ops.quantized.layer_norm(x, [5], None, None, 0.0, 0.05, 100).int_repr().numpy()).all()
