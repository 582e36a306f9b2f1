"""qnb.onednn against torch.ops.onednn's pointwise ops: each check at a small size, the two kernels, bad input, faults."""
import os, subprocess, sys, warnings
import numpy as np, pytest
torch = pytest.importorskip('torch')
from qnb import onednn as O
from qnb.verify import CHECKS
warnings.filterwarnings('ignore')

SIZES = {'onednn_qlinear_pointwise': 40_000, 'onednn_qlinear_pointwise_binary': 30_000,
         'onednn_qconv_pointwise': 30_000, 'onednn_qconv2d_pointwise_binary': 20_000}

@pytest.mark.parametrize('name', sorted(SIZES))
def test_check(name):
    res = CHECKS[name]('x86', np.random.default_rng(sorted(SIZES).index(name) + 7), SIZES[name])
    assert res.compared >= SIZES[name] and res.mismatches == 0, res

def test_36_not_37():
    "The worked example: quantized::conv2d (old ideep path) gives 37, onednn::qconv_pointwise 36, qnb both."
    from qnb.conv import qconv2d
    from qnb.core import QArray
    x, w = np.array([126, 85], np.uint8).reshape(1, 2, 1, 1), np.array([127, 1], np.int8).reshape(1, 2, 1, 1)
    ours = O.qconv_pointwise(x, 0.0379, 0, w, np.float32([0.00446]), [0], None, [1, 1], [0, 0], [1, 1], 1, 0.0745, 0, None, 'none', [], None)
    old = qconv2d(QArray(x, 0.0379, 0, 'quint8'), QArray(w, 0.00446, 0, 'qint8'), scale=0.0745, zero_point=0, engine='onednn')
    assert ours.reshape(-1).tolist() == [36] and old.int_repr.reshape(-1).tolist() == [37]

def _linear(x, zx, w, b, od, post='none', args=(), alg=''):
    wp = torch.ops.onednn.qlinear_prepack(torch.from_numpy(w), [max(1, x.size // x.shape[-1]), x.shape[-1]])
    ws, wz = torch.full((w.shape[0],), 0.01), torch.zeros(w.shape[0], dtype=torch.long)
    sy, zy = (0.1, 5) if od in (None, torch.int8) else (1.0, 0)
    theirs = torch.ops.onednn.qlinear_pointwise(torch.from_numpy(x), 0.05, zx, wp, ws, wz, b, sy, zy, od, post, list(args), alg)
    ours = O.qlinear_pointwise(x, 0.05, zx, w, ws, wz, b, sy, zy, od, post, list(args), alg)
    return ours, O._torch_out(theirs)

def test_nan_per_kernel():
    "A NaN bias: the JIT kernel stores 255 (uint8) / -128 (int8), the reference kernel (int8 input, float16 bias) 0."
    x, w = np.full((2, 4), 3, np.uint8), np.ones((3, 4), np.int8)
    b = torch.tensor([np.nan, np.inf, -np.inf])
    ours, theirs = _linear(x, 3, w, b, None)
    assert ours.tolist() == theirs.tolist() and ours[0].tolist() == [255, 255, 0]
    ours, theirs = _linear(x, 3, w, b.half(), None, 'hardswish')                     # float16 bias: ref_int8
    assert ours.tolist() == theirs.tolist() and ours[0].tolist() == [0, 255, 0]
    ours, theirs = _linear(x.astype(np.int8), 3, w, b, torch.int8, 'relu')           # int8 input: ref_int8
    assert ours.tolist() == theirs.tolist() and ours[0].tolist() == [0, 127, 0]     # ref relu keeps NaN, then NaN -> 0

def test_float_outputs_bit_for_bit():
    rng = np.random.default_rng(0)
    x, w = rng.integers(0, 256, (7, 33)).astype(np.uint8), rng.integers(-128, 128, (9, 33)).astype(np.int8)
    b = torch.randn(9) * 5
    for od in (torch.float32, torch.bfloat16, torch.float16):
        for post, args, alg in (('gelu', [], 'none'), ('tanh', [], ''), ('leaky_relu', [0.1], ''), ('swish', [], '')):
            ours, theirs = _linear(x, 100, w, b, od, post, args, alg)
            assert np.array_equal(np.asarray(ours).view(np.uint8), np.ascontiguousarray(theirs).view(np.uint8)), (od, post)

VERBOSE_CHILD = """
import torch
x = torch.ones(4, 16, dtype=torch.uint8); wp = torch.ops.onednn.qlinear_prepack(torch.ones(8, 16, dtype=torch.int8), [4, 16])
for xd, bd, od in (('uint8', 'float32', None), ('int8', 'float32', None), ('uint8', 'float16', None), ('uint8', 'float32', 'float16'), ('uint8', 'bfloat16', 'bfloat16')):
    print('@@', xd, bd, od, flush=True)
    odt = None if od is None else getattr(torch, od)
    sc = 0.1 if od is None else 1.0
    torch.ops.onednn.qlinear_pointwise(x.to(getattr(torch, xd)), 0.05, 3, wp, torch.ones(8), torch.zeros(8, dtype=torch.long),
                                       torch.ones(8, dtype=getattr(torch, bd)), sc, 0, odt, 'none', [], '')
"""

def test_kernel_dispatch_is_this_cpus():
    "(O8): ONEDNN_VERBOSE names ref_int8 exactly where linear_kernel says 'ref' (on this CPU: AVX512-VNNI, no AMX/FP16)."
    out = subprocess.run([sys.executable, '-c', VERBOSE_CHILD], env={**os.environ, 'ONEDNN_VERBOSE': '1'},
                         capture_output=True, text=True, check=True).stdout
    for block in out.split('@@')[1:]:
        xd, bd, od = block.split()[:3]
        impl = [l for l in block.splitlines() if ',matmul,' in l][0].split(',')[6]
        want = O.linear_kernel(xd, bd, None if od == 'None' else od)
        assert (impl.startswith('ref_int8')) == (want == 'ref'), (xd, bd, od, impl)

def test_prepacked_weights_and_tensor_overloads():
    rng = np.random.default_rng(1)
    x, w = torch.from_numpy(rng.integers(0, 256, (2, 8, 6, 6)).astype(np.uint8)), torch.from_numpy(rng.integers(-128, 128, (4, 8, 3, 3)).astype(np.int8))
    ws, wz = torch.rand(4) * 1e-2, torch.zeros(4, dtype=torch.long)
    wp = torch.ops.onednn.qconv_prepack(w, ws, 0.03, 7, [2, 1], [1, 0], [1, 1], 1, list(x.shape))
    args = ([2, 1], [1, 0], [1, 1], 1, 0.2, 3, None, 'relu', [], None)
    theirs = torch.ops.onednn.qconv_pointwise.tensor(x, torch.tensor(0.03), torch.tensor(7), wp, ws, wz, None, *args).numpy()
    assert np.array_equal(O.qconv_pointwise_tensor(x, torch.tensor(0.03), torch.tensor(7), wp, ws, wz, None, *args), theirs)
    assert np.array_equal(O.qconv2d_pointwise(x, 0.03, 7, w.numpy(), ws.numpy(), wz.numpy(), None, *args), theirs)

def test_weight_zero_points_torch_ignores():
    "torch's ops ignore w_zero_point (a fault); qnb subtracts it, and with zeros gives torch's output."
    rng = np.random.default_rng(2)
    x, w = rng.integers(0, 256, (3, 16)).astype(np.uint8), rng.integers(-128, 128, (5, 16)).astype(np.int8)
    wp = torch.ops.onednn.qlinear_prepack(torch.from_numpy(w), [3, 16])
    ws, zw = torch.full((5,), 0.01), torch.full((5,), 3, dtype=torch.long)
    theirs = torch.ops.onednn.qlinear_pointwise(torch.from_numpy(x), 0.1, 0, wp, ws, zw, None, 1.0, 0, torch.float32, 'none', [], '').numpy()
    assert np.array_equal(O.qlinear_pointwise(x, 0.1, 0, w, ws, zw * 0, None, 1.0, 0, torch.float32, 'none', [], ''), theirs)
    ours = O.qlinear_pointwise(x, 0.1, 0, w, ws, zw, None, 1.0, 0, torch.float32, 'none', [], '')
    exact = (x.astype(np.int64) @ (w.astype(np.int64) - 3).T).astype(np.float32) * np.float32(0.1) * np.float32(0.01)
    assert np.array_equal(ours, exact)

def test_bad_input():
    x, w = np.zeros((2, 4), np.uint8), np.zeros((3, 4), np.int8)
    ws, wz = np.ones(3, np.float32), np.zeros(3, np.int64)
    def lin(**kw):
        a = dict(qx=x, x_scale=0.1, x_zero_point=0, qw=w, w_scale=ws, w_zero_point=wz, bias=None, output_scale=0.1,
                 output_zero_point=0, output_dtype=None, post_op_name='none', post_op_args=[], post_op_algorithm='')
        return O.qlinear_pointwise(**{**a, **kw})
    for kw, msg in ((dict(post_op_name='silu'), 'unsupported unary post op silu'), (dict(qx=x.astype(np.int16)), 'qx must be'),
                    (dict(qw=w[:, :3]), 'in_features'), (dict(w_scale=np.ones(2)), '1 or 3'),
                    (dict(output_dtype=torch.float32), 'must be 1.0'), (dict(bias=torch.zeros(3, dtype=torch.float64)), 'float32, bfloat16 or float16'),
                    (dict(post_op_name='leaky_relu'), 'one argument'), (dict(x_scale=torch.ones(2)), 'one value'),
                    (dict(post_op_name='hardtanh', post_op_args=[1e39, 2.0]), 'fit in float32')):
        with pytest.raises((ValueError, TypeError), match=msg): lin(**kw)
    assert lin(qx=np.zeros((0, 4), np.uint8)).shape == (0, 3)
    assert lin(qx=np.zeros((2, 0, 4), np.uint8)).shape == (2, 0, 3)           # torch: (0, 3) (onednn-linear-empty-shape)
    b = np.float32([1, 2, 3])
    assert lin(qx=np.zeros((2, 0), np.uint8), qw=np.zeros((3, 0), np.int8), bias=b).tolist() == [[10, 20, 30]] * 2   # torch: SIGFPE

ISA_CHILD = """
import numpy as np, torch
from qnb import onednn as O
rng = np.random.default_rng(4)
cases = [(np.uint8([[255, 255]]), np.int8([[70, 60]]), 0),                      # one saturating pair: 31 on VNNI, 30 without
         (np.full((3, 257), 255, np.uint8), np.full((2, 257), 127, np.int8), 5),  # every pair saturates; AVX2's K halves
         (rng.integers(0, 256, (4, 64)).astype(np.uint8), rng.integers(-128, 128, (3, 64)).astype(np.int8), 100)]
for x, w, zx in cases:
    wp = torch.ops.onednn.qlinear_prepack(torch.from_numpy(w), list(x.shape))
    for od, sy in ((None, 0.13514), (torch.float32, 1.0)):
        t = torch.ops.onednn.qlinear_pointwise(torch.from_numpy(x), 0.05, zx, wp, torch.full((w.shape[0],), 0.0025), torch.zeros(w.shape[0], dtype=torch.long), None, sy, 0, od, 'none', [], '').numpy()
        q = O.qlinear_pointwise(x, 0.05, zx, w, np.full(w.shape[0], 0.0025, np.float32), np.zeros(w.shape[0]), None, sy, 0, od, 'none', [], '')
        assert np.array_equal(t, q), (x.shape, od, t, q)
print('ok', O.onednn_isa())
"""

@pytest.mark.parametrize('isa', ['AVX2', 'AVX512_CORE', 'AVX512_CORE_VNNI'])
def test_isa_in_a_child(isa):
    "(O9)-(O11): torch under ONEDNN_MAX_CPU_ISA=isa and qnb's default isa (read from the same variable) agree, saturating pairs included."
    if O.ISAS.index(isa.lower()) > O.ISAS.index(O.cpu_isa() if O.cpu_isa() in O.ISAS else 'avx512_core_vnni'): pytest.skip('CPU lacks it')
    out = subprocess.run([sys.executable, '-c', ISA_CHILD], env={**os.environ, 'ONEDNN_MAX_CPU_ISA': isa}, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split() == ['ok', isa.lower()], out.stderr[-2000:]

def test_lower_isas_have_checks_of_their_own():
    "(O9): one check per lower ISA; cases qnb does not derive there are skipped on both sides, not compared."
    for isa in O.lower_isas():
        assert f'onednn_qconv_pointwise@{isa}' in CHECKS and f'onednn_qlinear_pointwise@{isa}' in CHECKS
    if 'avx2' in O.lower_isas():
        res = CHECKS['onednn_qconv_pointwise@avx2']('x86', np.random.default_rng(0), 1000)   # AVX2 convs: not derived
        assert res.compared == 0 and res.mismatches == 0 and res.skipped > 0, res

def test_avx2_refuses_a_bfloat16_add_operand():
    "torch under ONEDNN_MAX_CPU_ISA=AVX2 creates no matmul for a bfloat16 'add' operand; qnb refuses it too."
    x, w = np.full((2, 4), 3, np.uint8), np.ones((3, 4), np.int8)
    other = torch.zeros(2, 3, dtype=torch.bfloat16)
    call = lambda isa: O.qlinear_pointwise_binary(x, 0.1, 0, w, np.full(3, 0.1, np.float32), np.zeros(3, np.int64), other, None,
                                                 1.0, 0, 'float32', 1.0, 0, 'add', 1.0, 'none', [], '', isa=isa)
    with pytest.raises(TypeError, match='other'): call('avx2')
    assert call('avx512_core').shape == (2, 3)
