"""Convolution sweeps against the installed torch (every engine), the plain-loop spec, and bad input.

The sweep logic lives in `qnb.conv` (shared with `qnb verify`); these tests choose sizes."""
import zlib
import numpy as np
import pytest
from qnb.core import QArray
from qnb.conv import (random_conv_case, check_conv_cases, conv_accumulator, conv_accumulator_reference,
                      conv_transpose_accumulator, conv_transpose_accumulator_reference, fbgemm_depthwise_accumulator,
                      fbgemm_depthwise_fast_path, qconv1d, qconv2d, qconv3d, qconv_transpose2d, qnb_conv, torch_conv,
                      real_conv_output)
from qnb.verify import supported_engines, call_isolated

ENGINES = supported_engines()

def _rng(*key): return np.random.default_rng(zlib.crc32('/'.join(map(str, key)).encode()))

def _coverage(cases):
    "How many cases exercise each part of the scope."
    K = [c['w'].shape[0 if c['transposed'] else 1] * int(np.prod(c['w'].shape[2:])) for c in cases]
    return dict(
        k_over_4096=sum(k > 4096 for k in K), depthwise=sum(c['groups'] > 1 and c['w'].shape[1] == 1 for c in cases),
        fbgemm_depthwise=sum(not c['transposed'] and fbgemm_depthwise_fast_path(c['x'].shape[1], c['w'].shape[0], c['w'].shape[2:], c['stride'], c['padding'], c['dilation'], c['groups']) for c in cases),
        per_channel=sum(np.ndim(c['sw']) > 0 for c in cases), affine_weights=sum(bool(np.any(c['zw'])) for c in cases),
        power_of_two=sum(float(np.log2(c['sx'])).is_integer() for c in cases), batch=sum(c['x'].shape[0] > 1 for c in cases),
        relu=sum(c['relu'] for c in cases), bias=sum(c['bias'] is not None for c in cases),
        ndim={d: sum(c['ndim'] == d for c in cases) for d in (1, 2, 3)})

@pytest.mark.parametrize('engine', ENGINES)
@pytest.mark.parametrize('transposed', [False, True])
def test_conv_sweep(engine, transposed):
    n = 1000 if transposed else 2500
    rng = _rng('conv', engine, transposed)
    cases = [random_conv_case(rng, engine, transposed) for _ in range(n)]
    cov = _coverage(cases)
    assert cov['per_channel'] > 0 or transposed and engine != 'qnnpack'
    if not transposed: assert cov['k_over_4096'] >= 10 and cov['depthwise'] >= 300 and cov['fbgemm_depthwise'] >= 100, cov
    r = check_conv_cases(cases, 'conv_transpose' if transposed else 'conv')
    print(f"\n{engine} {'conv_transpose' if transposed else 'conv'}: {n} cases, {r.compared} outputs, "
          f"{r.mismatches} mismatches, torch crashes {r.torch_crashes}, torch faults {r.torch_faults}; {cov}")
    assert r.mismatches == 0, r
    assert r.compared > 200_000

def test_fast_path_matches_the_spec():
    rng = _rng('spec')
    for _ in range(150):
        d = int(rng.integers(1, 4)); g = int(rng.choice([1, 2, 3])); cg, ocg = (int(v) for v in rng.integers(1, 4, 2))
        k = tuple(int(v) for v in rng.integers(1, 4, d)); s = tuple(int(v) for v in rng.integers(1, 3, d))
        dl = tuple(int(v) for v in rng.integers(1, 3, d)); p = tuple(int(v) for v in rng.integers(0, 3, d))
        size = tuple(int(dl[i] * (k[i] - 1) + 1 + rng.integers(0, 3)) for i in range(d))
        x = rng.integers(0, 256, (2, cg * g, *size)); w = rng.integers(-128, 128, (ocg * g, cg, *k))
        zx, zw = int(rng.integers(0, 256)), rng.integers(-30, 30, ocg * g)
        np.testing.assert_array_equal(conv_accumulator(x, zx, w, zw, s, p, dl, g), conv_accumulator_reference(x, zx, w, zw, s, p, dl, g))
        op = tuple(int(rng.integers(0, max(s[i], dl[i]))) for i in range(d))
        pt = tuple(min(p[i], (dl[i] * (k[i] - 1)) // 2) for i in range(d))
        wt = rng.integers(-128, 128, (cg * g, ocg, *k))
        np.testing.assert_array_equal(conv_transpose_accumulator(x, zx, wt, zw, s, pt, op, dl, g),
                                      conv_transpose_accumulator_reference(x, zx, wt, zw, s, pt, op, dl, g))

def _depthwise_spec(x, zx, w, zw, stride, padding):
    "Eq. (C1') as a plain loop over outputs."
    N, C, *S = x.shape; OC, _, *k = w.shape
    xp = np.pad(x.astype(np.int64), [(0, 0), (0, 0)] + [(p, p) for p in padding], constant_values=zx)
    out = [(S[i] + 2 * padding[i] - k[i]) // stride[i] + 1 for i in range(len(k))]
    acc = np.zeros((N, OC, *out), np.int64)
    taps = list(np.ndindex(*k))
    for n in range(N):
        for o in range(OC):
            for pos in np.ndindex(*out):
                vals = [int(xp[(n, o * C // OC) + tuple(pi * si + ti for pi, si, ti in zip(pos, stride, t))]) for t in taps]
                ws = [int(w[(o, 0) + t]) for t in taps]
                raw = sum(min(max(vals[j] * ws[j] + (vals[j + 1] * ws[j + 1] if j + 1 < len(taps) else 0), -32768), 32767)
                          if j + 1 < len(taps) else vals[j] * ws[j] for j in range(0, len(taps), 2))
                acc[(n, o) + pos] = raw - zw[o] * min(sum(vals), 32767) - zx * sum(ws) + len(taps) * zx * zw[o]
    return acc

def test_fbgemm_depthwise_matches_its_spec():
    rng = _rng('dw')
    for k, stride, mult in [((3, 3), (1, 1), 1), ((5, 5), (2, 1), 2), ((3, 7, 7), (1, 2, 2), 1), ((7, 7), (2, 2), 1)]:
        C = 8
        x = rng.integers(0, 256, (1, C) + tuple(kk + 2 for kk in k)); w = rng.integers(-128, 128, (C * mult, 1) + k)
        zw = rng.integers(-10, 10, C * mult); zx = int(rng.integers(0, 256)); pad = tuple((kk - 1) // 2 for kk in k)
        assert fbgemm_depthwise_fast_path(C, C * mult, k, stride, pad, (1,) * len(k), C)
        np.testing.assert_array_equal(fbgemm_depthwise_accumulator(x, zx, w, zw, stride, pad), _depthwise_spec(x, zx, w, zw, stride, pad))

def test_torch_crash_case_from_the_issue():
    "torch's onednn/x86 conv segfaults on this valid case; qnb computes it (and torch's other engines agree)."
    rng = _rng('crash')
    case = dict(engine='x86', transposed=False, ndim=2, x=rng.integers(0, 256, (2, 4, 12, 1)).astype(np.uint8), sx=0.05, zx=7,
                w=rng.integers(-127, 128, (2, 2, 1, 1)).astype(np.int8), sw=0.01, zw=0, bias=None, stride=[1, 3], padding=[2, 2],
                output_padding=[0, 0], dilation=[1, 2], groups=2, sy=0.2, zy=100, relu=False)
    cases = [dict(case, engine=e) for e in ENGINES]
    theirs, crashed = call_isolated('qnb.conv:torch_conv', cases)
    ours = [qnb_conv(c) for c in cases]
    for c, t, o in zip(cases, theirs, ours):
        if t is not None: np.testing.assert_array_equal(o, t)
    acc = conv_accumulator(case['x'], 7, case['w'], [0, 0], (1, 3), (2, 2), (1, 2), 2)
    for o in ours: assert np.abs(o - np.clip(real_conv_output(case, acc), 0, 255)).max() <= 0.5 + 1e-6

def _q(shape, dtype='quint8', scale=0.1, zp=0, rng=np.random.default_rng(0)):
    lo, hi, st = (0, 255, np.uint8) if dtype == 'quint8' else (-128, 127, np.int8)
    return QArray(rng.integers(lo, hi + 1, shape).astype(st), scale, zp, dtype)

X, W = _q((1, 4, 6, 6)), _q((8, 2, 3, 3), 'qint8')

@pytest.mark.parametrize('call, exc, match', [
    (lambda: qconv2d(X, W, groups=3), ValueError, 'groups must divide in_channels'),
    (lambda: qconv2d(X, W, groups=1), ValueError, r'weight.shape\[1\] must be in_channels/groups = 4'),
    (lambda: qconv2d(X, _q((8, 4, 3), 'qint8')), ValueError, 'weight must have 4 dimensions'),
    (lambda: qconv1d(X, W), ValueError, 'input must have 3 dimensions'),
    (lambda: qconv2d(X, _q((8, 4, 9, 9), 'qint8')), ValueError, 'kernel .* must fit in the padded input'),
    (lambda: qconv2d(X, W, groups=2, padding=-1), ValueError, 'padding must be >= 0'),
    (lambda: qconv2d(X, W, groups=2, stride=0), ValueError, 'stride must be >= 1'),
    (lambda: qconv2d(X, W, groups=2, dilation=(1, 0)), ValueError, 'dilation must be >= 1'),
    (lambda: qconv2d(X, W, groups=2, stride=(1, 1, 1)), TypeError, 'stride must be an int or a tuple of 2 ints'),
    (lambda: qconv2d(_q((1, 4, 6, 6), 'qint8'), W, groups=2), TypeError, 'input must be quint8'),
    (lambda: qconv2d(X, _q((8, 2, 3, 3)), groups=2), TypeError, 'weight must be qint8'),
    (lambda: qconv2d(X, W, groups=2, padding_mode='reflect'), ValueError, "padding_mode must be 'zeros'"),
    (lambda: qconv2d(X, W, groups=2, scale=0.0), ValueError, 'scale must be a finite number > 0'),
    (lambda: qconv2d(X, W, groups=2, scale=float('nan')), ValueError, 'scale'),
    (lambda: qconv2d(X, W, groups=2, zero_point=256), ValueError, r'zero_point must be in \[0, 255\]'),
    (lambda: qconv2d(X, W, groups=2, dtype='qint8'), ValueError, 'dtype must be quint8'),
    (lambda: qconv2d(X, W, np.zeros(3, np.float32), groups=2), ValueError, r'bias must have shape \(8,\)'),
    (lambda: qconv2d(X, W, np.zeros(8, np.int32), groups=2), TypeError, 'bias must be float'),
    (lambda: qconv2d(X, _q((8, 2, 3, 3), 'qint8', zp=3), groups=2, engine='onednn'), ValueError, 'weight zero points must all be 0'),
    (lambda: qconv2d(X, W, groups=2, engine='cuda'), ValueError, 'engine must be one of'),
    (lambda: qconv2d(X.int_repr, W, groups=2), TypeError, 'input must be a QArray or a quantized torch tensor'),
    (lambda: qconv2d(X, QArray(W.int_repr, np.full(2, 0.1), np.zeros(2, int), 'qint8', axis=1), groups=2), ValueError, 'along axis 0'),
    (lambda: qconv_transpose2d(X, _q((4, 2, 3, 3), 'qint8'), stride=2, output_padding=2), ValueError, 'output_padding must be smaller'),
    (lambda: qconv_transpose2d(X, _q((4, 2, 3, 3), 'qint8'), output_padding=1, engine='onednn'), ValueError, 'output_padding must be smaller'),
    (lambda: qconv_transpose2d(X, _q((4, 2, 3, 3), 'qint8'), stride=2, output_padding=1, engine='onednn'), ValueError, 'output_padding must be 0'),
    (lambda: qconv_transpose2d(X, _q((3, 2, 3, 3), 'qint8')), ValueError, r'weight.shape\[0\] must be in_channels = 4'),
    (lambda: qconv_transpose2d(X, QArray(_q((4, 2, 3, 3), 'qint8').int_repr, np.full(2, 0.1), np.zeros(2, int), 'qint8', axis=1), engine='fbgemm'),
     ValueError, 'must be per-tensor for a transposed conv'),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match): call()

def test_qnnpack_has_no_3d_transposed_conv():
    from qnb.conv import qconv_transpose3d
    with pytest.raises(ValueError, match="no correct 3-D transposed"):
        qconv_transpose3d(_q((1, 2, 3, 3, 3)), _q((2, 2, 1, 1, 1), 'qint8'), engine='qnnpack')

def test_torch_tensors_in():
    import torch
    x = torch.quantize_per_tensor(torch.rand(1, 3, 5, 5), 0.02, 4, torch.quint8)
    w = torch.quantize_per_channel(torch.randn(6, 3, 3, 3) * 0.1, torch.full((6,), 0.003, dtype=torch.float64), torch.zeros(6, dtype=torch.long), 0, torch.qint8)
    b = torch.randn(6)
    for engine in ENGINES:
        torch.backends.quantized.engine = engine
        import torch.ao.nn.quantized.functional as qF
        theirs = qF.conv2d(x, w, b, padding=1, scale=0.05, zero_point=128)
        ours = qconv2d(x, w, b, padding=1, scale=0.05, zero_point=128, engine=engine)
        np.testing.assert_array_equal(ours.int_repr, theirs.int_repr().numpy())
        assert ours.scale == theirs.q_scale() and ours.zero_point == theirs.q_zero_point()

def test_qnnpack_depthwise_transposed_per_channel_axis0():
    "QNNPACK takes per-channel weights of a depthwise transpose along axis 0 (one output channel per input channel)."
    import torch
    from qnb.conv import qconv_transpose2d
    torch.backends.quantized.engine = 'qnnpack'
    g = torch.Generator().manual_seed(0)
    x = torch.quantize_per_tensor(torch.rand(2, 3, 5, 4, generator=g) * 2, 0.01, 7, torch.quint8)
    w = torch.quantize_per_channel(torch.randn(3, 1, 3, 2, generator=g) * 0.5, torch.tensor([0.01, 0.02, 0.005], dtype=torch.double),
                                   torch.tensor([0, -3, 5]), 0, torch.qint8)
    b = torch.randn(3, generator=g)
    packed = torch.ops.quantized.conv_transpose2d_prepack(w, b, [2, 1], [1, 0], [1, 0], [1, 1], 3)
    theirs = torch.ops.quantized.conv_transpose2d(x, packed, 0.05, 100).int_repr().numpy()
    ours = qconv_transpose2d(x, w, b, (2, 1), (1, 0), (1, 0), 3, 1, 0.05, 100, engine='qnnpack').int_repr
    assert (ours == theirs).all()

# Issue 19: non-finite and huge biases, scales beyond float32, zero-size dimensions, dynamic convs.
from qnb.conv import (conv_engine_path, torch_fault, qnb_conv_output_shape, weight_scales_beyond_float32, check_conv_dynamic_cases, random_conv_dynamic_case,
                      qconv2d_dynamic, qconv_transpose2d_dynamic, qconv3d_dynamic, qconv1d_dynamic, conv_prepack, qconv_dynamic_packed)

EXTREMES = ('bias_nan', 'bias_inf', 'bias_big', 'sy_big', 'sy_tiny', 'sx_big', 'sw_big', 'sw_tiny')

def _extreme_case(rng, engine, transposed):
    c = random_conv_case(rng, engine, transposed)
    kind = str(rng.choice(EXTREMES))
    OC = c['w'].shape[1] * c['groups'] if transposed else c['w'].shape[0]
    if kind == 'sy_big': c['sy'] = float(rng.choice([1e39, 3.5e38, 1e38, 1e300]))
    if kind == 'sy_tiny': c['sy'] = float(rng.choice([1e-39, 1e-45, 1e-46, 1e-300]))
    if kind == 'sx_big': c['sx'] = float(rng.choice([1e39, 1e38, 1e30, 1e20]))
    if kind in ('sw_big', 'sw_tiny'):
        v = float(rng.choice([1e39, 1e38, 1e20] if kind == 'sw_big' else [1e-46, 1e-40, 1e-30]))
        c['sw'] = np.full(OC, v) if np.ndim(c['sw']) else v
    if kind.startswith('bias'):                  # some channels only; a float32 product that overflows for 'bias_big'
        b = np.asarray(c['bias'] if c['bias'] is not None else np.zeros(OC, np.float32)).copy()
        some = rng.random(OC) < 0.5
        b[some] = {'bias_nan': np.nan, 'bias_inf': float(rng.choice([np.inf, -np.inf])), 'bias_big': float(rng.choice([3e38, -3e38]))}[kind]
        c['bias'] = b.astype(np.float32)
    return c

def _comparable_channels(c, path):
    "Channels where torch's value is the engine's arithmetic (not a fault family: see FAULTS.md)."
    OC = c['w'].shape[1] * c['groups'] if c['transposed'] else c['w'].shape[0]
    keep = np.ones(OC, bool)
    b = None if c['bias'] is None else np.asarray(c['bias'], np.float64)
    if path == 'onednn':
        bad = weight_scales_beyond_float32(c['sw'], OC)                 # onednn-weight-scale-beyond-float32
        if bad is not None: keep &= ~bad
        if c['transposed']:      # its transposed conv is wrong (family 1): only an infinite bias decides alone; NaN gives 255
            keep &= b is not None and np.isinf(b)                       # on its brgemm kernel, 0 on its gemm-based one
    if path == 'qnnpack' and b is not None:                              # a bias beyond int32 wraps (family 7)
        with np.errstate(all='ignore'):
            q = b / (np.float64(c['sx']) * np.broadcast_to(np.asarray(c['sw'], np.float64), (OC,)))
        keep &= ~(np.abs(q) >= 2.0**31 - 64)
    return keep

def test_nonfinite_bias_and_extreme_scales():
    "NaN in some channels, +-inf, biases whose float32 products overflow, scales beyond float32: qnb follows each engine."
    rng = _rng('extreme')
    cases = [_extreme_case(rng, engine, bool(rng.random() < 0.35)) for engine in ENGINES for _ in range(80)]
    theirs_all, crashed = call_isolated('qnb.conv:torch_conv', cases)      # one child process for all engines
    compared = bad = refused = faults = 0
    for i, (c, theirs) in enumerate(zip(cases, theirs_all)):
        try: ours = qnb_conv(c)
        except ValueError as e: ours = e
        if i in crashed: continue
        if isinstance(theirs, dict) or isinstance(ours, ValueError):     # both refuse (QNNPACK's requantization scale check)
            assert isinstance(theirs, dict) and isinstance(ours, ValueError), (c['engine'], theirs, ours)
            refused += 1; continue
        path = conv_engine_path(c['engine'], c['zw'], c['groups'], c['output_padding'], c['transposed'], np.ndim(c['sw']) > 0)
        keep = _comparable_channels(c, path)
        differ = int((ours != theirs)[:, keep].sum())
        if differ and torch_fault(c, ours, theirs): faults += 1; continue
        compared += int(keep.sum()) * ours.size // ours.shape[1]; bad += differ
    assert bad == 0 and compared > 40_000 and refused > 0, (bad, compared, refused, faults)

def test_onednn_nan_goes_to_255():
    "oneDNN's epilogue: max(0, t) and min(255, t) with t second pass NaN on, cvtps2dq makes it INT_MIN, vpmovusdb 255."
    x = QArray(np.full((1, 1, 3, 3), 10, np.uint8), 0.1, 0, 'quint8')
    w = QArray(np.ones((3, 1, 1, 1), np.int8), 0.1, 0, 'qint8')
    b = np.array([np.nan, np.inf, -np.inf], np.float32)
    expect = {'onednn': [255, 255, 0], 'fbgemm': [0, 0, 0]}          # FBGEMM: cvtps2dq's INT_MIN saturates to 0
    for engine, values in expect.items():
        assert qconv2d(x, w, b, scale=0.5, zero_point=7, engine=engine).int_repr[0, :, 0, 0].tolist() == values
    assert qconv2d(x, w, b, scale=0.5, zero_point=7, relu=True, engine='onednn').int_repr[0, :, 0, 0].tolist() == [7, 255, 7]

def _empty_case(engine, transposed, d, N=2, C=4, OC=4, G=1, S=5, k=3, pad=0):
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, ((C, OC // G) if transposed else (OC, C // G)) + (k,) * d).astype(np.int8)
    return dict(engine=engine, transposed=transposed, ndim=d, x=rng.integers(0, 256, (N, C) + (S,) * d).astype(np.uint8), sx=0.02,
                zx=3, w=w, sw=0.01, zw=0, bias=rng.standard_normal(OC).astype(np.float32), stride=[1] * d, padding=[pad] * d,
                output_padding=[0] * d, dilation=[1] * d, groups=G, sy=0.05, zy=7, relu=False)

EMPTY = {'C=0': dict(C=0), 'OC=0': dict(OC=0), 'N=0': dict(N=0), 'C=0,OC=0': dict(C=0, OC=0), 'G=2,C=0': dict(C=0, G=2),
         'G=2,OC=0': dict(OC=0, G=2), 'OC=0,N=0': dict(OC=0, N=0), 'C=0,N=0': dict(C=0, N=0), 'out=0': dict(S=2),
         'out=0,N=0': dict(S=2, N=0), 'out=0,C=0': dict(S=2, C=0), 'S=0': dict(S=0, k=1), 'out<0': dict(S=1, k=5)}

def _torch_crashes(c):
    "Zero-size cases that kill torch's process (FAULTS.md): FBGEMM's prepack with no output channels, QNNPACK with none in."
    C, OC = c['x'].shape[1], (c['w'].shape[1] * c['groups'] if c['transposed'] else c['w'].shape[0])
    out = qnb_conv_output_shape(c)[1:]
    path = conv_engine_path(c['engine'], 0, c['groups'], (0,), c['transposed'])
    return path == 'fbgemm' and OC == 0 or path == 'qnnpack' and C == 0 and (OC == 0 or 0 in out) and c['x'].shape[0] > 0

def test_zero_size_dimensions():
    "Refused where torch refuses; computed (empty, or the bias alone) where torch computes, crashes or returns garbage."
    cases = [_empty_case(e, t, 2, **spec) for t in (False, True) for spec in EMPTY.values() for e in ENGINES
             if not (t and ('out' in str(spec) or 'S' in spec))]
    crashing = [c for c in cases if _torch_crashes(c)]
    cases = [c for c in cases if not _torch_crashes(c)]
    theirs_all, crashed = call_isolated('qnb.conv:torch_conv', cases)
    assert not crashed
    for c, theirs in zip(cases + crashing, theirs_all + [None] * len(crashing)):
        try: ours = qnb_conv(c)
        except ValueError as e: ours = e
        if theirs is None or 'INTERNAL ASSERT' in str(theirs):     # torch fails: qnb computes, or refuses as torch's own check would
            assert not isinstance(ours, ValueError) or 'output shape' in str(ours), ours
            continue
        if isinstance(theirs, dict):
            assert isinstance(ours, ValueError), (c['engine'], c['x'].shape, c['w'].shape, theirs['error'])
            continue
        assert not isinstance(ours, ValueError), (c['engine'], c['x'].shape, c['w'].shape, ours)
        assert ours.shape == theirs.shape
        path = conv_engine_path(c['engine'], 0, c['groups'], (0,), c['transposed'])
        if c['x'].shape[1] == 0 and path == 'fbgemm': continue          # fbgemm-conv-no-input-channels: torch's memory is uninitialised
        np.testing.assert_array_equal(ours, theirs)
    x0, w0 = QArray(np.zeros((1, 0, 4, 4), np.uint8), 0.1, 0, 'quint8'), QArray(np.zeros((3, 0, 3, 3), np.int8), 0.1, 0, 'qint8')
    y = qconv2d(x0, w0, np.array([0.5, -0.5, 0.0], np.float32), scale=0.25, zero_point=10, engine='fbgemm')
    assert y.shape == (1, 3, 2, 2) and (y.int_repr[0, :, 0, 0] == [12, 8, 10]).all()       # the bias alone: 10 + b / 0.25
    with pytest.raises(ValueError, match="in_channels and out_channels must be > 0 on engine 'onednn'"): qconv2d(x0, w0, engine='onednn')

def test_conv_dynamic_sweep():
    "Every engine's dynamic convs, float32 bit patterns (the `conv_dynamic` verify sweep, smaller; one child process)."
    rng, cases = _rng('dynamic'), []
    for engine in ENGINES:
        n = 0
        while n < 15_000:
            cases.append(random_conv_dynamic_case(rng, engine, transposed=bool(rng.random() < 0.4)))
            n += cases[-1]['x'].shape[0] * int(np.prod(qnb_conv_output_shape(cases[-1])))
    r = check_conv_dynamic_cases(cases)
    print(f"\nconv_dynamic, {len(ENGINES)} engines: {r}")
    assert r.mismatches == 0 and r.compared >= 15_000 * len(ENGINES), r

def test_conv_dynamic_packed_and_refusals():
    import torch
    rng = _rng('dynamic-packed')
    x = (rng.standard_normal((2, 6, 9, 8)) * 4).astype(np.float32)
    w = QArray(rng.integers(-128, 128, (4, 3, 3, 3)).astype(np.int8), 0.004, 0, 'qint8')
    b = rng.standard_normal(4).astype(np.float32)
    packed = conv_prepack(w, b, stride=2, padding=1, groups=2)
    for engine in ENGINES:
        np.testing.assert_array_equal(qconv_dynamic_packed(x, packed, engine=engine), qconv2d_dynamic(x, w, b, 2, 1, groups=2, engine=engine))
        assert qconv_dynamic_packed(x, packed, False, engine=engine).dtype == np.float32
    with pytest.raises(ValueError, match='input must be finite'): qconv2d_dynamic(np.full((1, 6, 4, 4), -np.inf, np.float32), w, groups=2)
    with pytest.raises(ValueError, match='input must have 4 dimensions'): qconv2d_dynamic(x[0], w, groups=2)
    with pytest.raises(TypeError, match='input must be a float32 tensor'): qconv2d_dynamic(torch.zeros(1, 6, 4, 4, dtype=torch.float64), w, groups=2)
    with pytest.raises(ValueError, match="padding_mode must be 'zeros' or 'reflect'"): qconv2d_dynamic(x, w, groups=2, padding_mode='circular')
    with pytest.raises(ValueError, match="'reflect' is not supported for 3-D"):
        qconv3d_dynamic(x[..., None], QArray(np.ones((4, 3, 1, 1, 1), np.int8), 0.1, 0, 'qint8'), groups=2, padding_mode='reflect')
    with pytest.raises(ValueError, match="no correct 3-D transposed"):
        from qnb.conv import qconv_transpose3d_dynamic
        qconv_transpose3d_dynamic(x[..., None], QArray(np.ones((6, 2, 1, 1, 1), np.int8), 0.1, 0, 'qint8'), engine='qnnpack')
    assert qconv1d_dynamic(np.zeros((0, 6, 5), np.float32), QArray(np.ones((4, 3, 3), np.int8), 0.1, 0, 'qint8'), groups=2).shape == (0, 4, 3)
