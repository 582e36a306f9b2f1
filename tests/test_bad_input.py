"""A bad-input catalogue across the public kernels: every quantized-tensor argument that is not one is refused with a
TypeError naming it; num_threads is validated everywhere it is taken; a call that cannot fit in memory is refused
before it allocates."""
import numpy as np
import pytest
from qnb.core import QArray, quantize_per_tensor, dequantize
from qnb import conv, linear, batchnorm, norm, activation, elementwise, pool, upsample, fused

X4 = QArray(np.full((1, 2, 4, 4), 70, np.uint8), 0.05, 64, 'quint8')        # (N, C, H, W)
X3 = QArray(np.full((1, 2, 4), 70, np.uint8), 0.05, 64, 'quint8')
X5 = QArray(np.full((1, 2, 2, 3, 3), 70, np.uint8), 0.05, 64, 'quint8')
W4 = QArray(np.ones((2, 2, 1, 1), np.int8), 0.02, 0, 'qint8')
W3 = QArray(np.ones((2, 2, 1), np.int8), 0.02, 0, 'qint8')
W5 = QArray(np.ones((2, 2, 1, 1, 1), np.int8), 0.02, 0, 'qint8')
XL = QArray(np.full((3, 4), 70, np.uint8), 0.05, 64, 'quint8')
WL = QArray(np.ones((2, 4), np.int8), 0.02, 0, 'qint8')
C1 = np.ones(2, np.float32)

# kernel, its valid arguments, the quantized parameters to spoil
CALLS = {
    'qconv1d': (conv.qconv1d, dict(input=X3, weight=W3), ('input', 'weight')),
    'qconv2d': (conv.qconv2d, dict(input=X4, weight=W4), ('input', 'weight')),
    'qconv3d': (conv.qconv3d, dict(input=X5, weight=W5), ('input', 'weight')),
    'qconv_transpose1d': (conv.qconv_transpose1d, dict(input=X3, weight=W3), ('input', 'weight')),
    'qconv_transpose2d': (conv.qconv_transpose2d, dict(input=X4, weight=W4), ('input', 'weight')),
    'qconv_transpose3d': (conv.qconv_transpose3d, dict(input=X5, weight=W5), ('input', 'weight')),
    'conv_prepack': (conv.conv_prepack, dict(weight=W4), ('weight',)),
    'qconv_packed': (conv.qconv_packed, dict(input=X4, packed=conv.conv_prepack(W4)), ('input', 'packed')),
    'qconv2d_add': (fused.qconv2d_add, dict(input=X4, accum=X4, weight=W4, engine='onednn'), ('input', 'accum', 'weight')),
    'qlinear': (linear.qlinear, dict(input=XL, weight=WL), ('input', 'weight')),
    'linear_prepack': (linear.linear_prepack, dict(weight=WL), ('weight',)),
    'qlinear_packed': (linear.qlinear_packed, dict(input=XL, packed=linear.linear_prepack(WL)), ('input', 'packed')),
    'qlinear_dynamic': (linear.qlinear_dynamic, dict(input=np.ones((3, 4), np.float32), weight=WL), ('weight',)),
    'qbatch_norm': (batchnorm.qbatch_norm, dict(input=X4, weight=C1, bias=C1, mean=C1, var=C1, eps=1e-5, scale=0.1, zero_point=3), ('input',)),
    'qlayer_norm': (norm.qlayer_norm, dict(input=X4, normalized_shape=(4, 4), weight=None, bias=None, eps=1e-5, scale=0.1, zero_point=3), ('input',)),
    'qgroup_norm': (norm.qgroup_norm, dict(input=X4, num_groups=2, weight=None, bias=None, eps=1e-5, scale=0.1, zero_point=3), ('input',)),
    'qinstance_norm': (norm.qinstance_norm, dict(input=X4, weight=None, bias=None, eps=1e-5, scale=0.1, zero_point=3), ('input',)),
    'qclamp': (activation.qclamp, dict(input=X4, min=0.0, max=1.0), ('input',)),
    'qhardtanh': (activation.qhardtanh, dict(input=X4), ('input',)),
    'qrelu6': (activation.qrelu6, dict(input=X4), ('input',)),
    'qrelu': (activation.qrelu, dict(input=X4), ('input',)),
    'qhardswish': (activation.qhardswish, dict(input=X4, scale=0.1, zero_point=3), ('input',)),
    'qhardsigmoid': (activation.qhardsigmoid, dict(input=X4), ('input',)),
    'qsigmoid': (activation.qsigmoid, dict(input=X4), ('input',)),
    'qtanh': (activation.qtanh, dict(input=X4), ('input',)),
    'qleaky_relu': (activation.qleaky_relu, dict(input=X4), ('input',)),
    'qelu': (activation.qelu, dict(input=X4, scale=0.1, zero_point=3), ('input',)),
    'qgelu': (activation.qgelu, dict(input=X4), ('input',)),
    'qsoftmax': (activation.qsoftmax, dict(input=X4, dim=1, scale=0.1, zero_point=3), ('input',)),
    'qadd': (elementwise.qadd, dict(a=X4, b=X4, scale=0.1, zero_point=3), ('a', 'b')),
    'qmul': (elementwise.qmul, dict(a=X4, b=X4, scale=0.1, zero_point=3), ('a', 'b')),
    'qadd_scalar': (elementwise.qadd_scalar, dict(input=X4, other=0.5), ('input',)),
    'qmul_scalar': (elementwise.qmul_scalar, dict(input=X4, other=0.5), ('input',)),
    'qmax_pool1d': (pool.qmax_pool1d, dict(input=X3, kernel_size=2), ('input',)),
    'qmax_pool2d': (pool.qmax_pool2d, dict(input=X4, kernel_size=2), ('input',)),
    'qmax_pool3d': (pool.qmax_pool3d, dict(input=X5, kernel_size=2, engine='x86'), ('input',)),
    'qavg_pool1d': (pool.qavg_pool1d, dict(input=X3, kernel_size=2), ('input',)),
    'qavg_pool2d': (pool.qavg_pool2d, dict(input=X4, kernel_size=2), ('input',)),
    'qavg_pool3d': (pool.qavg_pool3d, dict(input=X5, kernel_size=2), ('input',)),
    'qadaptive_avg_pool2d': (pool.qadaptive_avg_pool2d, dict(input=X4, output_size=2), ('input',)),
    'qadaptive_avg_pool3d': (pool.qadaptive_avg_pool3d, dict(input=X5, output_size=2), ('input',)),
    'qmean': (pool.qmean, dict(input=X4, dim=(2, 3)), ('input',)),
    'qupsample_nearest2d': (upsample.qupsample_nearest2d, dict(input=X4, output_size=(8, 8)), ('input',)),
    'qupsample_nearest3d': (upsample.qupsample_nearest3d, dict(input=X5, output_size=(4, 6, 6)), ('input',)),
    'qupsample_bilinear2d': (upsample.qupsample_bilinear2d, dict(input=X4, output_size=(8, 8)), ('input',)),
    'qinterpolate': (upsample.qinterpolate, dict(input=X4, scale_factor=2), ('input',)),
    'dequantize': (dequantize, dict(q=X4), ('q',)),
}
BAD = {'None': None, 'float array': np.zeros((1, 2, 4, 4), np.float32), 'list': [[1, 2]], 'int array': np.zeros((2, 4), np.uint8)}

@pytest.mark.parametrize('name', CALLS)
def test_valid_call_runs(name):
    fn, kwargs, _ = CALLS[name]
    fn(**kwargs)

@pytest.mark.parametrize('bad', BAD)
@pytest.mark.parametrize('name,param', [(n, p) for n, (_, _, ps) in CALLS.items() for p in ps])
def test_a_non_quantized_argument_is_refused_by_name(name, param, bad):
    fn, kwargs, _ = CALLS[name]
    with pytest.raises(TypeError, match=rf'^{param} must be a'):
        fn(**{**kwargs, param: BAD[bad]})

def test_cat_names_the_bad_element():
    with pytest.raises(TypeError, match=r'tensors\[1\] must be a QArray'):
        elementwise.qcat([X4, None])

THREADED = [n for n, (fn, _, _) in CALLS.items() if 'num_threads' in fn.__code__.co_varnames[:fn.__code__.co_argcount + fn.__code__.co_kwonlyargcount]]

@pytest.mark.parametrize('bad', [0, -3, 1.5, True, '2'])
@pytest.mark.parametrize('name', THREADED)
def test_num_threads_is_validated_everywhere(name, bad):
    fn, kwargs, _ = CALLS[name]
    with pytest.raises(ValueError, match='num_threads must be an int >= 1'):
        fn(**kwargs, num_threads=bad)

def test_every_kernel_with_threads_is_listed():
    assert {'qadd', 'qmul', 'qadd_scalar', 'qhardswish', 'qsoftmax', 'qgroup_norm', 'qinstance_norm', 'qmean',
            'qadaptive_avg_pool3d'} <= set(THREADED)

HUGE = {                                                 # small inputs whose outputs cannot fit in any machine's memory
    'upsample_nearest2d': lambda: upsample.qinterpolate(X4, size=(10**6, 10**6)),
    'upsample_bilinear2d': lambda: upsample.qinterpolate(X4, size=(10**6, 10**6), mode='bilinear'),
    'adaptive_avg_pool2d': lambda: pool.qadaptive_avg_pool2d(X4, (10**6, 10**6)),
    'add': lambda: elementwise.qadd(QArray(np.zeros((10**6, 1), np.uint8), 0.1, 0, 'quint8'),
                                    QArray(np.zeros((1, 10**6), np.uint8), 0.1, 0, 'quint8'), 0.1, 0),
}

@pytest.mark.parametrize('name', HUGE)
def test_a_call_that_cannot_fit_is_refused_before_it_allocates(name):
    with pytest.raises(MemoryError, match=rf'{name} needs about .* but only .* is available'):
        HUGE[name]()

def test_quantize_refuses_what_torch_refuses():
    torch = pytest.importorskip('torch')
    for t in (torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.float16), torch.ones(2, dtype=torch.int64)):
        with pytest.raises(RuntimeError, match='Quantize only works on Float Tensor'):
            torch.quantize_per_tensor(t, 0.1, 0, torch.quint8)
        with pytest.raises(TypeError, match='x must be a float32 tensor'):
            quantize_per_tensor(t, 0.1, 0, 'quint8')
    with pytest.raises(TypeError, match='x must be floating point'):
        quantize_per_tensor(np.arange(4), 0.1, 0, 'quint8')

def _torch_and_qnb(engine, torch_call, qnb_call):
    "(torch's integers or None if it refused, qnb's or None if it refused)."
    torch = pytest.importorskip('torch')
    if engine not in torch.backends.quantized.supported_engines: pytest.skip(f'no {engine}')
    torch.backends.quantized.engine = engine
    try: t = torch_call(torch).int_repr().numpy()
    except RuntimeError: t = None
    try: q = qnb_call().int_repr
    except ValueError: q = None
    return t, q

@pytest.mark.parametrize('engine', ['x86', 'qnnpack'])
@pytest.mark.parametrize('scale', [1e39, 1e-46, 3e-39])         # float32: inf, 0, subnormal
@pytest.mark.parametrize('op', ['avg_pool2d', 'adaptive_avg_pool2d', 'mean', 'elu', 'add', 'hardswish'])
def test_scales_beyond_float32_follow_torch_per_engine(engine, scale, op):
    torch = pytest.importorskip('torch')
    x = torch.quantize_per_tensor(torch.linspace(-3, 3, 64).reshape(1, 4, 4, 4), 0.05, 64, torch.quint8)
    xin = torch._make_per_tensor_quantized_tensor(x.int_repr(), scale, 64)        # the input scale beyond float32
    calls = {
        'avg_pool2d': (lambda t: t.nn.functional.avg_pool2d(xin, 2), lambda: pool.qavg_pool2d(xin, 2, engine=engine)),
        'adaptive_avg_pool2d': (lambda t: t.nn.functional.adaptive_avg_pool2d(xin, 2), lambda: pool.qadaptive_avg_pool2d(xin, 2, engine=engine)),
        'mean': (lambda t: xin.mean((2, 3)), lambda: pool.qmean(xin, (2, 3), engine=engine)),
        'elu': (lambda t: t.ops.quantized.elu(x, scale, 3, 1.0, 1.0, 1.0), lambda: activation.qelu(x, scale, 3, engine=engine)),
        'add': (lambda t: t.ops.quantized.add(x, x, scale, 3), lambda: elementwise.qadd(x, x, scale, 3, engine=engine)),
        'hardswish': (lambda t: t.ops.quantized.hardswish(xin, 0.1, 3), lambda: activation.qhardswish(xin, 0.1, 3, engine=engine)),
    }
    t, q = _torch_and_qnb(engine, *calls[op])
    assert (t is None) == (q is None), (t, q)
    if t is not None: assert np.array_equal(t, q)

ZERO_SHAPES = [(0, 3, 4, 4), (2, 0, 4, 4), (2, 3, 0, 4), (2, 3, 4, 0)]

def _zero_size_ops(torch, x, engine):
    C = x.shape[1]
    c = torch.ones(C)
    F = torch.nn.functional
    return {
        'relu': (lambda: torch.relu(x), lambda: activation.qrelu(x, engine=engine)),
        'sigmoid': (lambda: torch.sigmoid(x), lambda: activation.qsigmoid(x, engine=engine)),
        'softmax': (lambda: torch.ops.quantized.softmax(x, 1, 0.1, 3), lambda: activation.qsoftmax(x, 1, 0.1, 3, engine=engine)),
        'add': (lambda: torch.ops.quantized.add(x, x, 0.1, 3), lambda: elementwise.qadd(x, x, 0.1, 3, engine=engine)),
        'mul': (lambda: torch.ops.quantized.mul(x, x, 0.1, 3), lambda: elementwise.qmul(x, x, 0.1, 3, engine=engine)),
        'cat': (lambda: torch.ops.quantized.cat([x, x], 1, 0.1, 3), lambda: elementwise.qcat([x, x], 1, 0.1, 3)),
        'batch_norm': (lambda: torch.ops.quantized.batch_norm2d(x, c, c, c * 0, c, 1e-5, 0.1, 3),
                       lambda: batchnorm.qbatch_norm(x, c.numpy(), c.numpy(), 0 * c.numpy(), c.numpy(), 1e-5, 0.1, 3, engine=engine)),
        'layer_norm': (lambda: torch.ops.quantized.layer_norm(x, [x.shape[-1]], None, None, 1e-5, 0.1, 3),
                       lambda: norm.qlayer_norm(x, x.shape[-1:], None, None, 1e-5, 0.1, 3)),
        'max_pool2d': (lambda: F.max_pool2d(x, 2), lambda: pool.qmax_pool2d(x, 2, engine=engine)),
        'avg_pool2d': (lambda: F.avg_pool2d(x, 2), lambda: pool.qavg_pool2d(x, 2, engine=engine)),
        'adaptive_avg_pool2d': (lambda: F.adaptive_avg_pool2d(x, 1), lambda: pool.qadaptive_avg_pool2d(x, 1, engine=engine)),
        'mean': (lambda: x.mean((2, 3)), lambda: pool.qmean(x, (2, 3), engine=engine)),
        'upsample': (lambda: F.interpolate(x, scale_factor=2), lambda: upsample.qinterpolate(x, scale_factor=2)),
        'bilinear': (lambda: F.interpolate(x, scale_factor=2, mode='bilinear'), lambda: upsample.qinterpolate(x, scale_factor=2, mode='bilinear')),
    }

@pytest.mark.parametrize('engine', ['x86', 'qnnpack'])
@pytest.mark.parametrize('shape', ZERO_SHAPES)
def test_zero_size_inputs_follow_torch(engine, shape):
    torch = pytest.importorskip('torch')
    x = torch.quantize_per_tensor(torch.randn(shape), 0.05, 64, torch.quint8)
    for op, (t_call, q_call) in _zero_size_ops(torch, x, engine).items():
        t, q = _torch_and_qnb(engine, lambda _: t_call(), q_call)
        assert (t is None) == (q is None), (op, t, q)
        if t is not None: assert t.shape == q.shape and np.array_equal(t, q), op

def test_group_norm_of_zero_channels_is_empty():
    # torch 2.13's quantized group_norm divides by zero channels and the process dies (SIGFPE); the result is empty
    y = norm.qgroup_norm(QArray(np.zeros((2, 0, 4, 4), np.uint8), 0.05, 64, 'quint8'), 1, None, None, 1e-5, 0.1, 3)
    assert y.shape == (2, 0, 4, 4)

def test_huge_linear_outputs_are_refused():
    x = QArray(np.zeros((10**6, 4), np.uint8), 0.05, 64, 'quint8')
    w = QArray(np.zeros((10**6, 4), np.int8), 0.02, 0, 'qint8')          # 10^12 outputs
    with pytest.raises(MemoryError, match='linear needs about'):
        linear.qlinear(x, w, None, 0.1, 0)
    with pytest.raises(MemoryError, match='linear_dynamic needs about'):
        linear.qlinear_dynamic(np.zeros((10**6, 4), np.float32), w)

def test_huge_conv_outputs_are_refused():
    x = QArray(np.zeros((1, 1, 4, 4), np.uint8), 0.05, 64, 'quint8')
    w = QArray(np.ones((4, 1, 1, 1), np.int8), 0.02, 0, 'qint8')
    with pytest.raises(MemoryError, match='conv needs about'):
        conv.qconv2d(x, w, None, padding=10**5, engine='x86')                  # a 2e5 x 2e5 output from a 4 x 4 input
    with pytest.raises(MemoryError, match='conv_transpose2d needs about'):
        conv.qconv_transpose2d(x, QArray(np.ones((1, 4, 1, 1), np.int8), 0.02, 0, 'qint8'), None, stride=10**5, engine='fbgemm')
