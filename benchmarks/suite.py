"""The benchmark suite: qnb against torch's native quantized kernels, and peers against both.

For each case it prints qnb's time, the fastest torch engine's time, their ratio, qnb's peak memory over
torch's (NumPy's peak by tracemalloc; torch's allocations by its profiler), and qnb's time per multiply-accumulate for convs and
linears. Then two peers on one conv: `onnx.reference`'s QLinearConv (needs `pip install onnx`) and
torch's own dequantize -> float conv -> quantize path, each with its mismatch count against torch's native
kernel. Each case also times its NumPy floor: the one NumPy operation any exact NumPy implementation of
it must run (the float32 GEMM of a conv or linear, a multiply-add per tap of a depthwise conv, one `np.take`
per element for the table lookups of batch norm and add), so floor / torch is the best ratio NumPy can reach
on this machine. Run: `python benchmarks/suite.py [--repeat N] [--quick] [--json benchmarks/results.json]`.
Not a test: the numbers belong to the machine; the issues' bars are ratios, recorded in closing notes."""
import argparse, json, os, platform, sys, time, warnings
import numpy as np
import torch
from qnb.core import QArray, quantize_per_tensor
from qnb.conv import qconv2d, conv_prepack, qconv_packed
from qnb.linear import linear_prepack, qlinear_packed
from qnb.batchnorm import qbatch_norm
from qnb.elementwise import qadd
from qnb.pool import qavg_pool2d
from qnb import onednn as qnb_onednn
from timing import engines, median_time

warnings.filterwarnings('ignore')

def qnb_peak_memory(fn):
    "Peak bytes NumPy allocates during `fn` (all of qnb's memory is NumPy arrays), by tracemalloc."
    import tracemalloc
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

def torch_allocated_memory(fn):
    """Bytes torch's CPU allocator hands out during `fn` (the profiler's self CPU memory of every op). The
    buffers of one quantized kernel call (the NHWC input copy, the output) all live until it returns, so
    this is its peak; where buffers are freed early it is an upper bound."""
    from torch.profiler import profile, ProfilerActivity
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)     # the profiler's start/stop lines would drown the table
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    finally:
        os.dup2(saved, 2); os.close(saved)
    return sum(max(e.self_cpu_memory_usage, 0) for e in prof.key_averages())

RNG = np.random.default_rng(0)

def _qx(shape, zp=3):
    return QArray(RNG.integers(0, 256, shape).astype(np.uint8), 0.02, zp, 'quint8')

def _qw(shape):
    return QArray(RNG.integers(-127, 128, shape).astype(np.int8), 0.005, 0, 'qint8')

def conv_case(name, shape, oc, k, stride, pad, groups=1):
    x, w = _qx(shape), _qw((oc, shape[1] // groups, k, k))
    b = RNG.standard_normal(oc).astype(np.float32)
    xt, wt, bt = x.to_torch(), w.to_torch(), torch.from_numpy(b)
    oh = (shape[2] + 2 * pad - k) // stride + 1
    macs = shape[0] * oc * oh * ((shape[3] + 2 * pad - k) // stride + 1) * (shape[1] // groups) * k * k
    packed = conv_prepack(w, b, stride, pad, 1, groups)      # prepared once, as torch's prepack below
    def ours(engine): return lambda: qconv_packed(x, packed, 0.5, 128, engine=engine)
    def theirs(engine):
        torch.backends.quantized.engine = engine
        packed = torch.ops.quantized.conv2d_prepack(wt, bt, [stride] * 2, [pad] * 2, [1, 1], groups)
        return lambda: torch.ops.quantized.conv2d(xt, packed, 0.5, 128)
    pixels = shape[0] * oh * ((shape[3] + 2 * pad - k) // stride + 1)
    floor = depthwise_floor(pixels, oc, k * k) if groups > 1 else gemm_floor(pixels, shape[1] * k * k, oc)
    return dict(name=name, ours=ours, theirs=theirs, macs=macs, kind='conv', floor=floor)

def gemm_floor(M, K, N):
    "The float32 GEMM (M, K) @ (K, N) alone, into a preallocated output: what BLAS-based exact convs and linears cannot skip."
    a, b, out = RNG.standard_normal((M, K)).astype(np.float32), RNG.standard_normal((K, N)).astype(np.float32), np.empty((M, N), np.float32)
    return lambda: np.matmul(a, b, out=out)

def depthwise_floor(pixels, C, taps):
    "A depthwise conv without a GEMM: one float32 multiply and one add per tap over the output, contiguous operands."
    win, w = RNG.standard_normal((pixels, C)).astype(np.float32), RNG.standard_normal((taps, C)).astype(np.float32)
    acc, tmp = np.empty_like(win), np.empty_like(win)
    def run():
        np.multiply(win, w[0], out=acc)
        for t in range(1, taps): np.add(acc, np.multiply(win, w[t], out=tmp), out=acc)
    return run

def take_floor(size, table_size, chunk=1 << 16):
    """`np.take` of `size` precomputed indices through a uint8 table of `table_size` entries, in cache-sized
    chunks on every core (NumPy widens the indices to intp inside each call): the lookup alone, indices given."""
    from qnb.core import parallel_ranges
    idx = RNG.integers(0, table_size, size).astype(np.uint8 if table_size <= 256 else np.uint16)
    table, out = RNG.integers(0, 256, table_size).astype(np.uint8), np.empty(size, np.uint8)
    def work(lo, hi):
        for i in range(lo, hi, chunk): np.take(table, idx[i:min(hi, i + chunk)], out=out[i:min(hi, i + chunk)], mode='wrap')
    return lambda: parallel_ranges(work, size)

def linear_case(M, K, N):
    x, w = _qx((M, K)), _qw((N, K))
    b = RNG.standard_normal(N).astype(np.float32)
    xt, wt, bt = x.to_torch(), w.to_torch(), torch.from_numpy(b)
    def theirs(engine):
        torch.backends.quantized.engine = engine
        p = torch.ops.quantized.linear_prepack(wt, bt)
        return lambda: torch.ops.quantized.linear(xt, p, 0.5, 128)
    packed = linear_prepack(w, b)
    return dict(name=f"linear {M}x{K}->{N}", ours=lambda e: lambda: qlinear_packed(x, packed, 0.5, 128, engine=e),
                theirs=theirs, macs=M * K * N, kind='linear', floor=gemm_floor(M, K, N))

def onednn_conv_case(name, shape, oc, k, stride, pad, groups=1):
    "`onednn::qconv_pointwise` (inductor's conv, ReLU fused, uint8 out) on the shape of a `conv_case`: the same bar."
    x, w = _qx(shape), _qw((oc, shape[1] // groups, k, k))
    b, ws, wz = RNG.standard_normal(oc).astype(np.float32), np.full(oc, 0.005, np.float32), np.zeros(oc, np.int64)
    geometry = ([stride] * 2, [pad] * 2, [1, 1], groups)
    ours = lambda engine: lambda: qnb_onednn.qconv_pointwise(x.int_repr, 0.02, 3, w.int_repr, ws, wz, b, *geometry, 0.5, 128,
                                                              None, 'relu', [], '')
    xt, wt, bt, wst, wzt = (torch.from_numpy(v) for v in (x.int_repr, w.int_repr, b, ws, wz))
    def theirs(engine):
        packed = torch.ops.onednn.qconv_prepack(wt, wst, 0.02, 3, *geometry, list(shape))
        return lambda: torch.ops.onednn.qconv_pointwise(xt, 0.02, 3, packed, wst, wzt, bt, *geometry, 0.5, 128, None, 'relu', [], '')
    oh, ow = ((shape[2] + 2 * pad - k) // stride + 1), ((shape[3] + 2 * pad - k) // stride + 1)
    pixels = shape[0] * oh * ow
    floor = depthwise_floor(pixels, oc, k * k) if groups > 1 else gemm_floor(pixels, shape[1] // groups * k * k, oc)
    return dict(name='onednn:: ' + name, ours=ours, theirs=theirs, macs=pixels * oc * shape[1] // groups * k * k, kind='conv',
                floor=floor, torch_engines=['x86'])

def onednn_linear_case(M, K, N):
    "`onednn::qlinear_pointwise` (inductor's linear, float32 out as a classifier's) on the shape of a `linear_case`."
    x, w = _qx((M, K)), _qw((N, K))
    b, ws, wz = RNG.standard_normal(N).astype(np.float32), np.full(N, 0.005, np.float32), np.zeros(N, np.int64)
    ours = lambda engine: lambda: qnb_onednn.qlinear_pointwise(x.int_repr, 0.02, 3, w.int_repr, ws, wz, b, 1.0, 0, torch.float32,
                                                                'none', [], '')
    xt, wt, bt, wst, wzt = (torch.from_numpy(v) for v in (x.int_repr, w.int_repr, b, ws, wz))
    def theirs(engine):
        packed = torch.ops.onednn.qlinear_prepack(wt, [M, K])
        return lambda: torch.ops.onednn.qlinear_pointwise(xt, 0.02, 3, packed, wst, wzt, bt, 1.0, 0, torch.float32, 'none', [], '')
    return dict(name=f"onednn:: linear {M}x{K}->{N}", ours=ours, theirs=theirs, macs=M * K * N, kind='linear',
                floor=gemm_floor(M, K, N), torch_engines=['x86'])

def batch_norm_case(shape=(32, 64, 56, 56)):
    x, C = _qx(shape), shape[1]
    prm = [RNG.standard_normal(C).astype(np.float32) for _ in range(3)] + [RNG.uniform(0.5, 2, C).astype(np.float32)]
    xt, tp = x.to_torch(), [torch.from_numpy(v) for v in prm]
    def theirs(engine):
        torch.backends.quantized.engine = engine
        return lambda: torch.ops.quantized.batch_norm2d(xt, tp[0], tp[1], tp[2], tp[3], 1e-5, 0.1, 128)
    return dict(name='batch_norm2d ' + 'x'.join(map(str, shape)),
                ours=lambda e: lambda: qbatch_norm(x, *prm, 1e-5, 0.1, 128, engine=e), theirs=theirs, kind='aten',
                floor=take_floor(int(np.prod(shape)), 256))

def add_case(shape=(32, 64, 56, 56)):
    a, b = _qx(shape), QArray(RNG.integers(0, 256, shape).astype(np.uint8), 0.03, 100, 'quint8')
    at, bt = a.to_torch(), b.to_torch()
    def theirs(engine):
        torch.backends.quantized.engine = engine
        return lambda: torch.ops.quantized.add(at, bt, 0.05, 64)
    return dict(name='qadd ' + 'x'.join(map(str, shape)), ours=lambda e: lambda: qadd(a, b, 0.05, 64, engine=e),
                theirs=theirs, kind='aten', floor=take_floor(int(np.prod(shape)), 65536))

def avg_pool_case(shape=(32, 64, 56, 56)):
    x = _qx(shape)
    xt = x.to_torch()
    def theirs(engine):
        torch.backends.quantized.engine = engine
        return lambda: torch.nn.functional.avg_pool2d(xt, 3, 2, 1)
    return dict(name='avg_pool2d 3x3 s2 ' + 'x'.join(map(str, shape)),
                ours=lambda e: lambda: qavg_pool2d(x, 3, 2, 1, engine=e), theirs=theirs, kind='aten',
                torch_engines=['x86', 'fbgemm', 'onednn'])   # qnnpack's avg pool is a different kernel

def zoo_case(batch=8):
    try:
        from qnb.zoo import build
        from qnb.model import run
    except ImportError:
        return None
    x = torch.randn(batch, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    models = {}
    def theirs(engine):
        if engine not in models: models[engine] = build('resnet', engine)[0]
        torch.backends.quantized.engine = engine
        m = models[engine]
        return lambda: m(x)
    def ours(engine):
        if engine not in models: models[engine] = build('resnet', engine)[0]
        m = models[engine]
        return lambda: run(m, x, engine=engine)
    return dict(name=f"zoo resnet end to end, batch {batch}, 3x64x64", ours=ours, theirs=theirs, kind='model',
                same_engine=True, floor=model_floor(build('resnet', 'x86')[0], x))

def model_floor(model, x):
    """A converted model's NumPy floor: the floors above for each of its layers, back to back: every conv's and
    linear's bare GEMM (one group: the im2col shape), every add's table lookup. Layer shapes come from one qnb run."""
    from qnb.model import model_graph, run_graph
    from torch.ao.nn.quantized.modules.conv import _ConvNd
    gm = model_graph(model)
    values, parts = {}, []
    run_graph(gm, x, 'x86', record=lambda node, v: values.__setitem__(node.name, v))
    for node in gm.graph.nodes:
        m = gm.get_submodule(node.target) if node.op == 'call_module' else None
        out = getattr(values.get(node.name), 'int_repr', None)
        if isinstance(m, _ConvNd) and m.groups == 1:
            parts.append(gemm_floor(out.size // out.shape[1], m.in_channels * int(np.prod(m.kernel_size)), out.shape[1]))
        elif isinstance(m, torch.ao.nn.quantized.Linear):
            parts.append(gemm_floor(out.size // out.shape[-1], m.in_features, m.out_features))
        elif 'add' in str(node.target) and out is not None:
            parts.append(take_floor(out.size, 65536))
    return lambda: [f() for f in parts]

def cases(quick):
    r18 = [('resnet18 conv1 7x7 s2', (1, 3, 224, 224), 64, 7, 2, 3), ('resnet18 layer1 3x3', (1, 64, 56, 56), 64, 3, 1, 1),
           ('resnet18 layer2 3x3 s2', (1, 64, 56, 56), 128, 3, 2, 1), ('resnet18 layer3 3x3', (1, 256, 14, 14), 256, 3, 1, 1),
           ('resnet18 layer4 3x3', (1, 512, 7, 7), 512, 3, 1, 1), ('resnet18 downsample 1x1 s2', (1, 64, 56, 56), 128, 1, 2, 0)]
    out = [conv_case(*c) for c in (r18[1:3] if quick else r18)]
    b32 = [('resnet18 layer1 3x3, batch 32', (32, 64, 56, 56), 64, 3, 1, 1), ('resnet18 layer4 3x3, batch 32', (32, 512, 7, 7), 512, 3, 1, 1)]
    out += [conv_case(*c) for c in (b32[:1] if quick else b32)]
    out += [conv_case('mobilenetv2 depthwise 3x3', (1, 144, 56, 56), 144, 3, 1, 1, 144),
             conv_case('mobilenetv2 pointwise 1x1', (1, 24, 56, 56), 144, 1, 1, 0)]
    out += [linear_case(1, 4096, 1000), linear_case(128, 768, 3072), batch_norm_case(), add_case(), avg_pool_case()]
    out += [onednn_conv_case(*c) for c in (r18[1:3] if quick else r18[1:3] + r18[5:])]     # pt2e + inductor: the same shapes
    out += [onednn_conv_case('mobilenetv2 depthwise 3x3', (1, 144, 56, 56), 144, 3, 1, 1, 144),
            onednn_linear_case(1, 4096, 1000), onednn_linear_case(128, 768, 3072)]
    z = zoo_case()
    if z: out.append(z)
    return out

def measure(case, repeat, engine):
    "qnb (reproducing `engine`) against every torch engine; the fastest engine is the bar."
    t_ours = median_time(case['ours'](engine), repeat)
    mem_ours = qnb_peak_memory(case['ours'](engine))
    t_torch, mem_torch = {}, {}
    for e in (case.get('torch_engines') or engines()):
        if case.get('same_engine') and e != engine: continue
        fn = case['theirs'](e)
        t_torch[e] = median_time(fn, repeat)
        mem_torch[e] = torch_allocated_memory(fn)
    best = min(t_torch, key=t_torch.get)
    t_floor = median_time(case['floor'], repeat) if case.get('floor') else None
    return dict(name=case['name'], kind=case['kind'], qnb_ms=t_ours * 1e3, torch_ms={e: t * 1e3 for e, t in t_torch.items()},
                fastest=best, ratio=t_ours / t_torch[best],
                mem_ratio=(mem_ours / mem_torch[best]) if mem_torch[best] else float('inf'),
                qnb_mem_mb=mem_ours / 2**20, torch_mem_mb=mem_torch[best] / 2**20,
                ns_per_mac=(t_ours / case['macs'] * 1e9) if case.get('macs') else None,
                floor_ms=t_floor * 1e3 if t_floor else None, floor_ratio=t_floor / t_torch[best] if t_floor else None)

def peers(repeat):
    "onnx.reference QLinearConv and torch's float path on resnet18 layer1 3x3, against torch's native conv."
    shape, oc, k = (1, 64, 56, 56), 64, 3
    x, w = _qx(shape, zp=7), _qw((oc, 64, k, k))
    sy, zy = 0.5, 128
    torch.backends.quantized.engine = 'x86'
    xt, wt = x.to_torch(), w.to_torch()
    packed = torch.ops.quantized.conv2d_prepack(wt, None, [1, 1], [1, 1], [1, 1], 1)
    native = torch.ops.quantized.conv2d(xt, packed, sy, zy).int_repr().numpy()
    t_native = median_time(lambda: torch.ops.quantized.conv2d(xt, packed, sy, zy), repeat)
    t_qnb = median_time(lambda: qconv2d(x, w, None, 1, 1, scale=sy, zero_point=zy, engine='x86'), repeat)
    ours = qconv2d(x, w, None, 1, 1, scale=sy, zero_point=zy, engine='x86').int_repr
    rows = [dict(name='qnb qconv2d (x86 semantics)', ms=t_qnb * 1e3, mismatches=int((ours != native).sum()))]
    def float_path():
        y = torch.nn.functional.conv2d(xt.dequantize(), wt.dequantize(), None, 1, 1)
        return torch.quantize_per_tensor(y, sy, zy, torch.quint8)
    rows.append(dict(name='torch dequantize -> float conv -> quantize', ms=median_time(float_path, repeat) * 1e3,
                     mismatches=int((float_path().int_repr().numpy() != native).sum())))
    try:
        import onnx
        from onnx import helper, TensorProto
        from onnx.reference import ReferenceEvaluator
        node = helper.make_node('QLinearConv', ['x', 'xs', 'xz', 'w', 'ws', 'wz', 'ys', 'yz'], ['y'], pads=[1, 1, 1, 1])
        graph = helper.make_graph([node], 'qconv',
            [helper.make_tensor_value_info(n, t, None) for n, t in
             [('x', TensorProto.UINT8), ('xs', TensorProto.FLOAT), ('xz', TensorProto.UINT8), ('w', TensorProto.INT8),
              ('ws', TensorProto.FLOAT), ('wz', TensorProto.INT8), ('ys', TensorProto.FLOAT), ('yz', TensorProto.UINT8)]],
            [helper.make_tensor_value_info('y', TensorProto.UINT8, None)])
        ev = ReferenceEvaluator(helper.make_model(graph))
        feeds = dict(x=x.int_repr, xs=np.float32(x.scale), xz=np.uint8(x.zero_point), w=w.int_repr, ws=np.float32(w.scale),
                     wz=np.int8(0), ys=np.float32(sy), yz=np.uint8(zy))
        t0 = time.perf_counter(); y = ev.run(None, feeds)[0]; t_onnx = time.perf_counter() - t0
        rows.append(dict(name=f'onnx.reference QLinearConv (onnx {onnx.__version__})', ms=t_onnx * 1e3,
                         mismatches=int((y != native).sum())))
    except ImportError:
        rows.append(dict(name='onnx.reference QLinearConv (pip install onnx)', ms=float('nan'), mismatches=None))
    return dict(native_ms=t_native * 1e3, outputs=int(native.size), rows=rows)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--repeat', type=int, default=7)
    ap.add_argument('--engine', default='x86', help='engine whose semantics qnb reproduces in the timed call')
    ap.add_argument('--quick', action='store_true', help='fewer conv shapes')
    ap.add_argument('--json', help='also write the results to this file (the docs benchmark page reads it)')
    a = ap.parse_args(argv)
    print(f"torch {torch.__version__}, numpy {np.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; qnb reproduces engine {a.engine!r}; median of {a.repeat}")
    print(f"{'case':<46}{'qnb ms':>10}{'torch ms':>10}{'engine':>9}{'ratio':>8}{'mem ratio':>10}{'ns/MAC':>8}{'floor/torch':>12}")
    results = []
    for c in cases(a.quick):
        r = measure(c, a.repeat, a.engine)
        results.append(r)
        print(f"{r['name']:<46}{r['qnb_ms']:>10.2f}{r['torch_ms'][r['fastest']]:>10.2f}{r['fastest']:>9}"
              f"{r['ratio']:>7.1f}x{r['mem_ratio']:>9.1f}x" + (f"{r['ns_per_mac']:>8.3f}" if r['ns_per_mac'] else f"{'':>8}")
              + (f"{r['floor_ratio']:>11.1f}x" if r['floor_ratio'] else ''))
    per_mac = [r['ns_per_mac'] for r in results if r['kind'] == 'conv']
    print(f"\nconv time per MAC: {min(per_mac):.3f} .. {max(per_mac):.3f} ns ({max(per_mac) / min(per_mac):.1f}x spread)")
    p = peers(a.repeat)
    print(f"\npeers on resnet18 layer1 3x3 (batch 1, {p['outputs']:,} outputs); torch native x86: {p['native_ms']:.2f} ms")
    for r in p['rows']:
        print(f"  {r['name']:<52}{r['ms']:>10.1f} ms  mismatches vs native: {r['mismatches']}")
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(dict(torch=torch.__version__, numpy=np.__version__, threads=torch.get_num_threads(),
                           engine=a.engine, repeat=a.repeat, results=results, peers=p), f, indent=1)
        print(f"wrote {a.json}")

if __name__ == '__main__': main()
