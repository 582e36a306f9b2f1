"""add / add_relu / mul / mul_relu (broadcasting included), add_scalar / mul_scalar, cat: against the installed
torch under every CPU capability, and bad input."""
import numpy as np
import pytest
from qnb.core import QArray
from qnb.elementwise import (qadd, qmul, qcat, qadd_scalar, qmul_scalar, vector_elements, vector_mask, inner_dimension,
                             check_cat, qnnpack_add_params)
from qnb.verify import verify, supported_capabilities, supported_engines

def test_add_mul_sweep_every_capability():
    rows = verify(500_000, kernels=['add_mul'], capabilities=supported_capabilities(), out=print)
    assert rows and all(r['mismatches'] == 0 and r['compared'] >= 500_000 for r in rows), rows

def test_add_mul_scalar_sweep_every_capability():
    rows = verify(300_000, kernels=['add_mul_scalar'], capabilities=supported_capabilities(), out=print)
    assert rows and all(r['mismatches'] == 0 and r['compared'] >= 300_000 for r in rows), rows

def test_cat_sweep():
    for engine in ('fbgemm', 'qnnpack'):
        r = check_cat(engine, np.random.default_rng(11), 200_000)
        assert r.mismatches == 0 and r.compared >= 200_000, r

def test_cat_channels_last_every_capability():
    "The channels-last fast path (E7) changes arithmetic with the build: default, avx2 (and avx512, which runs avx2's)."
    rows = verify(100_000, engines=['x86'], kernels=['cat'], capabilities=supported_capabilities(), out=print)
    assert rows and all(r['mismatches'] == 0 and r['compared'] >= 100_000 for r in rows), rows

A = QArray(np.zeros((2, 5), np.uint8), 0.1, 3, 'quint8')
PC = QArray(np.zeros((2, 5), np.uint8), [0.1, 0.2], [3, 4], 'quint8', axis=0)
CL = QArray(np.zeros((2, 4, 5, 3), np.uint8).transpose(0, 3, 1, 2), 0.1, 3, 'quint8')      # channels-last (2, 3, 4, 5)

@pytest.mark.parametrize('call, exc, match', [
    (lambda: qadd(A, QArray(np.zeros((2, 4), np.uint8), 0.1, 3, 'quint8'), 0.2, 0), ValueError, r'shapes \(2, 5\) and \(2, 4\) do not broadcast'),
    (lambda: qmul(A, QArray(np.zeros((3, 1), np.uint8), 0.1, 3, 'quint8'), 0.2, 0), ValueError, 'do not broadcast'),
    (lambda: qadd(A, QArray(np.zeros((2, 5), np.int8), 0.1, 3, 'qint8'), 0.2, 0), TypeError, 'same dtype'),
    (lambda: qadd(A, np.zeros((2, 5)), 0.2, 0), TypeError, 'b must be a QArray'),
    (lambda: qmul(A, A, 0.0, 0), ValueError, 'scale must be a finite number > 0'),
    (lambda: qadd(A, A, 0.1, 255, relu=True, engine='qnnpack'), ValueError, 'zero_point must be < 255'),
    (lambda: qadd(A, A, 1e-5, 0, engine='qnnpack'), ValueError, r'must be in \[2\*\*-14, 2\*\*8\)'),
    (lambda: qmul(CL, QArray(np.zeros((2, 2, 3, 4, 5), np.uint8), 0.1, 3, 'quint8'), 0.2, 0), ValueError, 'channels_last format'),
    (lambda: qadd(QArray(np.zeros((), np.uint8), 0.1, 3, 'quint8'), QArray(np.zeros((), np.uint8), 0.1, 3, 'quint8'), 0.1, 0, engine='qnnpack'),
     ValueError, '0-dimensional'),
    (lambda: qadd_scalar(A, '1.5'), TypeError, 'other must be a real number'),
    (lambda: qadd_scalar(A, True), TypeError, 'other must be a real number'),
    (lambda: qadd_scalar(A, 1e9), ValueError, r'int32 range|\[-2\*\*31'),
    (lambda: qadd_scalar(A, float('nan')), ValueError, 'finite'),
    (lambda: qadd_scalar(PC, 1.0), ValueError, 'per tensor'),
    (lambda: qmul_scalar(A, float('inf')), ValueError, 'other must be finite'),
    (lambda: qmul_scalar(QArray(np.zeros(3, np.uint8), 1e-300, 0, 'quint8'), 1e-30), ValueError, r'\|other\| \* scale must be a finite number > 0'),
    (lambda: qmul_scalar(A, 1.0, engine='tpu'), ValueError, 'engine must be one of'),
    (lambda: qcat([A, QArray(np.zeros((3, 4), np.uint8), 0.1, 3, 'quint8')], 0), ValueError, 'differ outside dim 0'),
    (lambda: qcat([A, A], 2), ValueError, r'dim must be in \[-2, 1\]'),
    (lambda: qcat([], 0), ValueError, 'must not be empty'),
    (lambda: qcat([A, A], 1, channels_last=[True]), TypeError, 'one bool per input'),
    (lambda: qcat([A, A], 1, channels_last='yes'), TypeError, 'channels_last must be None, a bool or one bool per input'),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match): call()

def test_vector_split_follows_threads():
    assert vector_elements(100_000, 1).sum() == (100_000 // 64) * 64
    assert vector_elements(100_000, 2).sum() == 2 * ((50_000 // 64) * 64)

def test_vector_split_follows_broadcast_rows():
    assert inner_dimension((4, 100), [(4, 100), (4, 1)]) == (100, True)       # rows of 100: b constant along each
    assert inner_dimension((4, 100), [(4, 100), (1, 100)]) == (100, True)     # b repeats: rows cannot merge
    assert inner_dimension((4, 100), [(4, 100), ()]) == (400, True)           # a scalar operand: one row
    assert inner_dimension((3, 4), [(3, 1), (1, 4)]) == (4, True)
    m = vector_mask((4, 100), [(4, 100), (4, 1)], 1).reshape(4, 100)
    assert (m[:, :64].all() and not m[:, 64:].any())

def test_scalar_qparams_examples():
    x = QArray(np.array([0, 10, 15, 30, 100], np.uint8), 0.1, 10, 'quint8')
    y = qadd_scalar(x, 0.5)                                     # c_q = 5 fits: only the zero point moves
    assert (y.scale, y.zero_point) == (0.1, 5) and (y.int_repr == x.int_repr).all()
    y = qmul_scalar(x, -2.0)                                    # mirrored integers
    assert y.zero_point == 245 and (y.int_repr == 255 - x.int_repr).all()

@pytest.mark.parametrize('capability', ['default', 'avx2', 'avx512'])
def test_add_tables_equal_the_elementwise_pipeline(capability):
    "Large inputs take two 256x256 tables; they must give what the element-by-element pipeline gives."
    from qnb.elementwise import add_fp32
    rng = np.random.default_rng(3)
    for dtype, st in (('quint8', np.uint8), ('qint8', np.int8)):
        lo, hi = (0, 255) if dtype == 'quint8' else (-128, 127)
        n = 600_000
        qa, qb = (rng.integers(lo, hi + 1, n).astype(st) for _ in range(2))
        vec = rng.random(n) < 0.7
        for relu in (False, True):
            args = (0.02, 0.0078125, 64) if dtype == 'quint8' else (0.5, 0.25, 0)
            whole = add_fp32(qa, 3 if dtype == 'quint8' else -3, args[0], qb, 100 if dtype == 'quint8' else 7, args[1], 0.05,
                             args[2], dtype, relu, capability, vec)
            parts = [add_fp32(qa[i:i + 50_000], 3 if dtype == 'quint8' else -3, args[0], qb[i:i + 50_000],   # below PAIR_TABLE_MIN
                              100 if dtype == 'quint8' else 7, args[1], 0.05, args[2], dtype, relu, capability, vec[i:i + 50_000])
                     for i in range(0, n, 50_000)]
            assert np.array_equal(whole, np.concatenate(parts))

def test_large_add_against_torch():
    import torch
    rng = np.random.default_rng(4)
    shape = (8, 64, 56, 56)
    a = QArray(rng.integers(0, 256, shape).astype(np.uint8), 0.02, 3, 'quint8')
    b = QArray(rng.integers(0, 256, shape).astype(np.uint8), 0.03, 100, 'quint8')
    for engine in ('x86', 'qnnpack'):
        torch.backends.quantized.engine = engine
        for relu, op in ((False, torch.ops.quantized.add), (True, torch.ops.quantized.add_relu)):
            assert np.array_equal(qadd(a, b, 0.05, 64, relu=relu, engine=engine).int_repr,
                                  op(a.to_torch(), b.to_torch(), 0.05, 64).int_repr().numpy())

def test_large_broadcast_add_tails_against_torch():
    """Rows of 2800 (b broadcast per channel): 2752 vector then a 48-element scalar tail (the plane's [55, 2:]), through the tables;
    223 + 29 at these qparams gives 69 in the vector lambda and 70 in the scalar one, so the tails show. Also on one thread."""
    import os, torch
    rng = np.random.default_rng(8)
    qa = rng.integers(0, 256, (8, 64, 56, 50)).astype(np.uint8)
    qa[rng.random(qa.shape) < 0.3] = 223
    qb = rng.integers(0, 256, (1, 64, 1, 1)).astype(np.uint8)
    qb[:, ::2] = 29
    a, b = QArray(qa, 0.0371, 17, 'quint8'), QArray(qb, 0.0533, 201, 'quint8')
    torch.backends.quantized.engine = 'x86'
    ours = qadd(a, b, 0.05, 100, engine='x86').int_repr
    theirs = torch.ops.quantized.add(a.to_torch(), b.to_torch(), 0.05, 100).int_repr().numpy()
    assert np.array_equal(ours, theirs)
    if torch.backends.cpu.get_cpu_capability() != 'DEFAULT':
        tail, body = (slice(None), slice(None, None, 2), 55, slice(2, None)), (slice(None), slice(None, None, 2), slice(0, 55))
        assert (theirs[tail][qa[tail] == 223] == 70).all() and (theirs[body][qa[body] == 223] == 69).all()   # the lambdas differ
    os.environ['QNB_NUM_THREADS'] = '1'
    try: assert np.array_equal(ours, qadd(a, b, 0.05, 100, engine='x86').int_repr)
    finally: del os.environ['QNB_NUM_THREADS']

def _views(torch, base):
    "Strided views of a 4-D quantized tensor: transposed, sliced, permuted, expanded, channels-last, sliced channels-last."
    cl = base.contiguous(memory_format=torch.channels_last)
    return [base.transpose(2, 3), base[..., ::2], base.permute(0, 2, 3, 1), base[..., :1].expand(*base.shape),
            cl, cl[:, :, 2:9, 1:], base[:, :1], cl[:1], base.transpose(0, 1)[:, :1]]

@pytest.mark.parametrize('engine', ['x86', 'qnnpack'])
def test_any_layout_matches_torch(engine):
    "(E0'): add/mul(_relu) of strided, expanded, permuted, channels-last and mixed-layout operands, broadcasting included: integers and output strides."
    import torch
    torch.backends.quantized.engine = engine
    g = torch.Generator().manual_seed(0)
    def q(shape, s, z, pair):            # half the values on (223, 29): the vector and scalar lambdas of add differ there
        v = torch.randint(0, 256, shape, generator=g)
        v[torch.rand(shape, generator=g) < 0.5] = pair
        return torch._make_per_tensor_quantized_tensor(v.to(torch.uint8), s, z)
    a = _views(torch, q((2, 3, 20, 130), 0.0371, 17, 223))
    b = _views(torch, q((2, 3, 20, 130), 0.0533, 201, 29))
    checked = 0
    for x in a:
        for y in b:
            try: np.broadcast_shapes(x.shape, y.shape)
            except ValueError: continue
            for name, ours in (('add', qadd), ('mul', qmul), ('add_relu', qadd), ('mul_relu', qmul)):
                try: t = getattr(torch.ops.quantized, name)(x, y, 0.05, 100)
                except RuntimeError as e:
                    with pytest.raises(ValueError): ours(x, y, 0.05, 100, relu=name.endswith('relu'), engine=engine)
                    continue
                o = ours(x, y, 0.05, 100, relu=name.endswith('relu'), engine=engine).int_repr
                assert np.array_equal(o, t.int_repr().numpy()), (name, x.shape, x.stride(), y.shape, y.stride())
                if all(n > 1 for n in t.shape): assert [s // o.itemsize for s in o.strides] == list(t.stride())
                checked += 1
    assert checked > 60

def test_scalar_ops_any_layout():
    "add_scalar (requantized, where |c| >= 2^24 splits the lambdas) and mul_scalar on strided views: integers, qparams, layout."
    import torch
    g = torch.Generator().manual_seed(1)
    base = torch._make_per_tensor_quantized_tensor(torch.randint(-2**30, 2**30, (2, 3, 20, 130), generator=g, dtype=torch.int32), 1e-9, 2**31 - 5)
    for x in _views(torch, base):
        for c in (0.37, -1e-3):
            t = torch.ops.quantized.add_scalar(x, c)
            o = qadd_scalar(x, c)
            assert np.array_equal(o.int_repr, t.int_repr().numpy()) and (o.scale, o.zero_point) == (t.q_scale(), t.q_zero_point())
            if all(n > 1 for n in x.shape): assert [s // 4 for s in o.int_repr.strides] == list(t.stride())
            t, o = torch.ops.quantized.mul_scalar(x, c), qmul_scalar(x, c)
            assert np.array_equal(o.int_repr, t.int_repr().numpy())

def test_qint32_add_mul_every_engine():
    "qint32 runs ATen's kernels on every engine (16 elements per vector step): wrapped q − z, float-rounded q, int32 saturation."
    import torch
    rng = np.random.default_rng(12)
    for engine in supported_engines():
        torch.backends.quantized.engine = engine
        for _ in range(20):
            shape = tuple(int(v) for v in rng.choice([1, 3, 17, 40], int(rng.integers(1, 4))))
            big = rng.random() < 0.5
            lo, hi = (-2**31, 2**31 - 1) if big else (-3000, 3000)
            a, b = (QArray(rng.integers(lo, hi, shape, endpoint=True).astype(np.int32), float(np.exp(rng.uniform(-8, 2))),
                           int(rng.integers(lo, hi, endpoint=True)), 'qint32') for _ in range(2))
            so, zo = float(np.exp(rng.uniform(-8, 2))), int(rng.integers(lo, hi, endpoint=True))
            for name, ours in (('add', qadd), ('mul', qmul), ('add_relu', qadd), ('mul_relu', qmul)):
                theirs = getattr(torch.ops.quantized, name)(a.to_torch(), b.to_torch(), so, zo).int_repr().numpy()
                assert np.array_equal(ours(a, b, so, zo, relu=name.endswith('relu'), engine=engine).int_repr, theirs), (engine, name)

def test_qnnpack_add_shift_32_and_more():
    "(E2'): scale ratios in [2^-14, 2^-10) make k = 32..35; x86's SSE2 body and scalar loop shift differently (tiles < 8 bytes)."
    import torch
    torch.backends.quantized.engine = 'qnnpack'
    rng = np.random.default_rng(13)
    seen = set()
    for _ in range(300):
        so = float(10 ** rng.uniform(-5, -3))
        sa = float(so * 2.0 ** rng.uniform(-14, -9.5))
        sb = sa if rng.random() < 0.5 else float(so * 2.0 ** rng.uniform(-14, -9.5))
        n = int(rng.choice([1, 5, 7, 8, 40, 4096 + 3, 4096 + 9]))
        a, b = (QArray(rng.integers(0, 256, (1, n)).astype(np.uint8), s, int(rng.integers(0, 256)), 'quint8') for s in (sa, sb))
        zo, relu = int(rng.integers(0, 255)), bool(rng.random() < 0.3)
        try: k = qnnpack_add_params(sa, sb, so)[2]
        except ValueError: continue
        seen.add(k)
        op = torch.ops.quantized.add_relu if relu else torch.ops.quantized.add
        assert np.array_equal(qadd(a, b, so, zo, relu=relu, engine='qnnpack').int_repr,
                              op(a.to_torch(), b.to_torch(), so, zo).int_repr().numpy()), (sa, sb, so, n)
    assert {32, 33, 34, 35} <= seen

def test_qnnpack_add_empty_inputs():
    "qnnpack_add returns an empty result for size(0) == 0 before any check; other empty shapes are refused (0 channels)."
    import torch
    torch.backends.quantized.engine = 'qnnpack'
    for shape, ok in (((0, 3), True), ((0,), True), ((0, 0), True), ((2, 0), False)):
        e = QArray(np.zeros(shape, np.uint8), 0.1, 3, 'quint8')
        for so, zo, relu in ((1e-5, 0, False), (0.1, 255, True), (0.1, 7, False)):
            if ok:
                assert qadd(e, e, so, zo, relu=relu, engine='qnnpack').shape == shape
                op = torch.ops.quantized.add_relu if relu else torch.ops.quantized.add
                assert tuple(op(e.to_torch(), e.to_torch(), so, zo).shape) == shape
            else:
                with pytest.raises(ValueError): qadd(e, e, so, zo, relu=relu, engine='qnnpack')
                with pytest.raises(RuntimeError): torch.ops.quantized.add(e.to_torch(), e.to_torch(), so, zo)
    t = QArray(np.zeros((2, 3), np.uint8), 1e-40, 3, 'quint8')                  # a subnormal float32 scale
    with pytest.raises(ValueError, match='normal float32'): qadd(t, t, 1e-40, 0, engine='qnnpack')
