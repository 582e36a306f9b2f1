"""Activations against the installed torch on every engine and CPU capability, and bad input."""
import ctypes, ctypes.util, sys, zlib
import numpy as np
import pytest
from qnb.core import QArray
from qnb.activation import (qclamp, qhardtanh, qrelu6, check_clamp, quantize_bound, qhardswish, qhardsigmoid, qsigmoid,
                            qtanh, qleaky_relu, qelu, qgelu, qsoftmax, ACTIVATIONS, glibc_expf, glibc_expm1f, glibc_tanhf, glibc_erff)
from qnb.verify import supported_engines, supported_capabilities, verify

@pytest.mark.parametrize('engine', supported_engines())
def test_clamp_sweep(engine):
    r = check_clamp(engine, np.random.default_rng(zlib.crc32(f'clamp/{engine}'.encode())), 300_000)
    assert r.mismatches == 0 and r.compared >= 300_000, r

SWEEP = 100_000

@pytest.fixture(scope='module')
def activation_rows():
    "One verify run (a worker per CPU capability) for every float activation."
    return verify(SWEEP, kernels=[*ACTIVATIONS, 'softmax'], capabilities=supported_capabilities(), out=print)

@pytest.mark.parametrize('op', [*ACTIVATIONS, 'softmax'])
def test_activation_sweep(activation_rows, op):
    rows = [r for r in activation_rows if r['kernel'] == op]
    assert len(rows) == len(supported_engines()) * len(supported_capabilities()), activation_rows
    assert all(r['mismatches'] == 0 and r['compared'] >= SWEEP for r in rows), rows

@pytest.mark.skipif(not sys.platform.startswith('linux') or not ctypes.util.find_library('m'), reason='needs the C library')
@pytest.mark.parametrize('name, ours', [('expf', glibc_expf), ('expm1f', glibc_expm1f), ('tanhf', glibc_tanhf), ('erff', glibc_erff)])
def test_libm_emulation(name, ours):
    f = getattr(ctypes.CDLL(ctypes.util.find_library('m')), name)
    f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x = (rng.standard_normal(30_000) * rng.choice([1e-6, 1e-2, 0.3, 1, 3, 10, 95], 30_000)).astype(np.float32)
    ref = np.array([f(float(v)) for v in x], np.float32)
    assert (ours(x).view(np.uint32) == ref.view(np.uint32)).all()

def test_relu6_bound_6_saturates_at_the_forum_scale():
    assert quantize_bound(6.0, 0.019743409007787704, 0, 'quint8') == 255

X = QArray(np.arange(10, dtype=np.uint8).reshape(2, 5), 0.1, 3, 'quint8')

def test_clamp_min_above_max_is_max_like_torch():
    assert (qclamp(X, 0.5, 0.2, engine='fbgemm').int_repr == quantize_bound(0.2, 0.1, 3, 'quint8')).all()

def test_output_qparams():
    assert (qsigmoid(X).scale, qsigmoid(X).zero_point) == (2**-8, 0)
    xi = QArray(np.zeros(3, np.int8), 0.1, 0, 'qint8')
    assert (qtanh(xi).scale, qtanh(xi).zero_point, qhardsigmoid(xi).zero_point) == (2**-7, 0, -128)
    assert qgelu(X).scale == float(np.float32(0.1)) and qleaky_relu(X).scale == 0.1

EMPTY0 = QArray(np.zeros((0, 3), np.uint8), 0.1, 3, 'quint8')

@pytest.mark.parametrize('call, exc, match', [
    (lambda: qhardtanh(X, 1.0, 0.5), ValueError, 'min_val must be <= max_val'),
    (lambda: qclamp(X, 0.5, 0.2, engine='qnnpack'), ValueError, "min must quantize to <= max on engine 'qnnpack'"),
    (lambda: qclamp(X, None, None), ValueError, 'at least one of min and max'),
    (lambda: qclamp(X, float('nan'), 1.0), ValueError, 'min must be a real number'),
    (lambda: qclamp(X, 0.5, None, engine='qnnpack'), ValueError, 'min and max must both be given'),
    (lambda: qrelu6(X.int_repr), TypeError, 'input must be a QArray'),
    (lambda: qhardswish(X.int_repr, 0.1, 3), TypeError, 'input must be a QArray'),
    (lambda: qtanh(QArray(np.zeros((2, 3), np.uint8), [0.1, 0.2, 0.3], [0, 0, 0], 'quint8', axis=1)), ValueError, 'quantized per tensor'),
    (lambda: qsigmoid(QArray(np.zeros(3, np.int32), 0.1, 0, 'qint32')), TypeError, 'quint8 or qint8'),
    (lambda: qhardswish(X, 0.0, 3), ValueError, 'scale must be a finite number > 0'),
    (lambda: qhardswish(X, 0.1, 256), ValueError, r'zero_point must be in \[0, 255\]'),
    (lambda: qleaky_relu(X, 0.1, 0.1), ValueError, 'give both scale and zero_point'),
    (lambda: qleaky_relu(X, float('nan')), ValueError, 'negative_slope must be a finite real number'),
    (lambda: qelu(X, 0.1, 3, alpha='1'), ValueError, 'alpha must be a finite real number'),
    (lambda: qelu(X, 0.1, -1), ValueError, r'zero_point must be in \[0, 255\]'),
    (lambda: qgelu(X, 'fast'), ValueError, "approximate must be 'none' or 'tanh'"),
    (lambda: qsigmoid(X, engine='mkl'), ValueError, 'engine must be one of'),
    (lambda: qtanh(X, capability='sse4'), ValueError, 'capability must be one of'),
    (lambda: qsigmoid(X, 0.1, 3, engine='qnnpack'), ValueError, "must be 2\\*\\*-8 and 0 for sigmoid on engine 'qnnpack'"),
    (lambda: qhardsigmoid(EMPTY0, engine='qnnpack'), ValueError, 'SIGFPE'),
    (lambda: qhardswish(EMPTY0, 0.1, 3, engine='qnnpack'), ValueError, 'SIGFPE'),
    (lambda: qtanh(QArray(np.zeros((3, 0), np.uint8), 0.1, 3, 'quint8'), engine='qnnpack'), ValueError, 'non-empty product'),
    (lambda: qtanh(QArray(np.array(7, np.uint8), 0.1, 3, 'quint8'), engine='qnnpack'), ValueError, 'at least one dimension'),
    (lambda: qhardswish(QArray(X.int_repr, 1e-40, 3, 'quint8'), 0.1, 3, engine='qnnpack'), ValueError, 'input scale must be a normal float32'),
    (lambda: qsoftmax(X, 2, 0.1, 3), ValueError, r'dim must be in \[-2, 1\]'),
    (lambda: qsoftmax(X, 1.0, 0.1, 3), TypeError, 'dim must be an integer'),
    (lambda: qsoftmax(X, 1, 0.1, 300), ValueError, r'zero_point must be in \[0, 255\]'),
    (lambda: qsoftmax(X, -2, 2**-8, 0, engine='qnnpack'), ValueError, 'IndexError'),
    (lambda: qsoftmax(QArray(np.zeros((3, 0), np.uint8), 0.1, 3, 'quint8'), 1, 2**-8, 0, engine='qnnpack'), ValueError, 'SIGFPE'),
])

def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match): call()

@pytest.mark.parametrize('engine', supported_engines())
def test_channels_last_follows_memory_order(engine):
    "torch walks a channels-last tensor in memory order (NHWC), so the vector body / scalar tail split is NHWC's."
    import torch
    from qnb.activation import qhardswish, qsigmoid
    torch.backends.quantized.engine = engine
    rng = np.random.default_rng(5)
    for C in (3, 37, 70):
        x = torch.quantize_per_tensor(torch.from_numpy(rng.standard_normal((2, C, 5, 7)).astype(np.float32) * 3),
                                      0.05, 10, torch.quint8).contiguous(memory_format=torch.channels_last)
        assert (qtanh(x, engine=engine).int_repr == torch.tanh(x).int_repr().numpy()).all()
        assert (qsigmoid(x, engine=engine).int_repr == torch.sigmoid(x).int_repr().numpy()).all()
        assert (qhardswish(x, 0.03, 5, engine=engine).int_repr == torch.ops.quantized.hardswish(x, 0.03, 5).int_repr().numpy()).all()
    assert (qsoftmax(x, 1, 0.01, 0, engine='x86').int_repr == torch.ops.quantized.softmax(x, 1, 0.01, 0).int_repr().numpy()).all()

def test_any_layout_matches_torch():
    "(A4'): strided, transposed, sliced and channels-last inputs split vector/scalar as torch's TensorIterator does."
    import torch
    import torch.ao.nn.quantized.functional as qF
    F = torch.nn.functional
    # parameters whose vector and scalar tables differ in some byte, so a wrong split shows
    cases = [(0.00774201601590409, 179, torch.sigmoid, qsigmoid), (0.007545550599965253, 50, torch.tanh, qtanh),
             (0.01875345612149278, 189, lambda x: qF.elu(x, 0.05, 3), lambda x: qelu(x, 0.05, 3)),
             (0.422017523985129, 215, lambda x: F.leaky_relu(x, 0.1), lambda x: qleaky_relu(x, 0.1)),
             (0.422017523985129, 215, lambda x: qF.leaky_relu(x, 0.1, False, 0.4, 215), lambda x: qleaky_relu(x, 0.1, 0.4, 215))]
    g = torch.Generator().manual_seed(0)
    for s, z, theirs, ours in cases:
        base = torch.quantize_per_tensor((torch.randint(0, 256, (2, 3, 20, 130), generator=g).float() - z) * s, s, z, torch.quint8)
        for v in (base[..., ::2], base.transpose(2, 3), base[..., :65], base.permute(0, 2, 3, 1), base[..., :1].expand(2, 3, 20, 70),
                  base.contiguous(memory_format=torch.channels_last), base.contiguous(memory_format=torch.channels_last)[:, :, 2:9, 1:]):
            assert (ours(v).int_repr == theirs(v).int_repr().numpy()).all(), (theirs, v.shape, v.stride())

def test_softmax_qnnpack_sum_wraps_like_torch():
    x = QArray(np.full((1, 513), 77, np.uint8), 0.1, 3, 'quint8')
    assert (qsoftmax(x, 1, 2**-8, 0, engine='qnnpack').int_repr == 255).all()
    assert (qsoftmax(x, 1, 2**-8, 0, engine='x86').int_repr == 0).all()
