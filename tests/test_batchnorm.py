"""BatchNorm against the installed torch under every CPU capability, the FMA-order probe, and bad input."""
import numpy as np
import pytest
from qnb.core import QArray
from qnb.batchnorm import qbatch_norm
from qnb.verify import verify, supported_capabilities

def test_batch_norm_sweep_every_capability():
    "1M outputs per engine and capability (each capability in its own process); includes the tie cases."
    rows = verify(1_000_000, kernels=['batch_norm'], capabilities=supported_capabilities(), out=print)
    assert rows and all(r['mismatches'] == 0 and r['compared'] >= 1_000_000 for r in rows), rows

_C = 5
_ARGS = dict(weight=np.ones(_C), bias=np.zeros(_C), mean=np.zeros(_C), var=np.ones(_C), eps=1e-5, scale=0.1, zero_point=3)
_X = QArray(np.zeros((2, _C, 4, 4), np.uint8), 0.1, 0, 'quint8')

@pytest.mark.parametrize('change, exc, match', [
    (dict(weight=np.ones(4)), ValueError, r'weight must have shape \(5,\)'),
    (dict(mean=np.zeros(6)), ValueError, r'mean must have shape \(5,\)'),
    (dict(var=-np.ones(_C)), ValueError, 'var must be >= 0'),
    (dict(eps=-1e-5), ValueError, 'eps must be a finite number >= 0'),
    (dict(weight=None), ValueError, 'weight must be provided'),
    (dict(scale=0.0), ValueError, 'scale must be a finite number > 0'),
    (dict(zero_point=300), ValueError, r'zero_point must be in \[0, 255\]'),
])
def test_bad_input(change, exc, match):
    with pytest.raises(exc, match=match): qbatch_norm(_X, **{**_ARGS, **change})

def test_bad_rank_and_dtype():
    with pytest.raises(ValueError, match='input must have rank 2 or 3'):
        qbatch_norm(QArray(np.zeros((5,), np.uint8), 0.1, 0, 'quint8'), **_ARGS)
    with pytest.raises(TypeError, match='input must be quint8 or qint8'):
        qbatch_norm(QArray(np.zeros((2, 5), np.int32), 0.1, 0, 'qint32'), **_ARGS)

def test_large_input_on_every_core_against_torch():
    "8x64x56x56: the per-channel lookups run on every core (qnb.core.parallel_ranges); same integers as torch and as one thread."
    import os, torch
    rng = np.random.default_rng(5)
    x = QArray(rng.integers(0, 256, (8, 64, 56, 56)).astype(np.uint8), 0.02, 3, 'quint8')
    w, b, m = (rng.standard_normal(64).astype(np.float32) for _ in range(3))
    v = rng.uniform(0.5, 2, 64).astype(np.float32)
    t = lambda a: torch.from_numpy(a)
    ours = qbatch_norm(x, w, b, m, v, 1e-5, 0.1, 128).int_repr
    assert np.array_equal(ours, torch.ops.quantized.batch_norm2d(x.to_torch(), t(w), t(b), t(m), t(v), 1e-5, 0.1, 128).int_repr().numpy())
    os.environ['QNB_NUM_THREADS'] = '1'
    try: assert np.array_equal(ours, qbatch_norm(x, w, b, m, v, 1e-5, 0.1, 128).int_repr)
    finally: del os.environ['QNB_NUM_THREADS']

def test_eps_zero_matches_torch():
    "torch accepts eps = 0, also where a channel's variance is 0 (an infinite 1/sigma)."
    import torch
    torch.manual_seed(0)
    x = torch.quantize_per_tensor(torch.rand(2, 6, 3, 5) * 4 - 1, 0.02, 60, torch.quint8)
    var = torch.rand(6); var[::2] = 0
    w, b, m = torch.randn(6), torch.randn(6), torch.randn(6) * 0.1
    for relu in (False, True):
        op = torch.ops.quantized.batch_norm2d_relu if relu else torch.ops.quantized.batch_norm2d
        assert (qbatch_norm(x, w, b, m, var, 0.0, 0.05, 100, relu=relu).int_repr == op(x, w, b, m, var, 0.0, 0.05, 100).int_repr().numpy()).all()
