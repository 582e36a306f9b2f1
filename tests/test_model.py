"""The model runner: every zoo model on every engine, 0 mismatching outputs at every layer; bad models refused."""
import numpy as np
import pytest
import torch
from qnb.model import run, compare, check_converted
from qnb.zoo import ZOO, INPUT_SHAPES, build
from qnb.verify import supported_engines

@pytest.mark.parametrize('engine', supported_engines())
@pytest.mark.parametrize('name', ZOO)
def test_zoo_model_every_layer_exact(name, engine):
    model, _ = build(name, engine)
    rng = np.random.default_rng(hash((name, engine)) % 2**32)
    for scale in (1.0, 4.0):                       # 4x: outside the calibrated range, outputs saturate
        x = torch.from_numpy((rng.standard_normal((3, *INPUT_SHAPES[name])) * scale).astype(np.float32))
        r = compare(model, x, engine=engine)
        assert r.mismatches == 0 and r.compared > 0, str(r)
        bad = [l.name for l in r.layers if l.mismatches and not l.torch_fault]
        assert not bad, bad
        out = run(model, x, engine=engine)
        torch.backends.quantized.engine = engine
        if not r.torch_faults:                     # after a torch fault qnb's own end result differs, by design
            assert torch.equal(out, model(x))
        else:
            assert engine == 'qnnpack' and name == 'mobilenet', str(r)

def test_fx_and_eager_models_both_covered():
    assert isinstance(build('mlp')[0], torch.fx.GraphModule) and not isinstance(build('resnet')[0], torch.fx.GraphModule)

def test_refusals():
    model, x = build('conv_bn_relu')
    with pytest.raises(ValueError, match=r"layer .*\(Quantize\)|layer .*Conv"):
        run(model, x[0, 0])                                    # wrong rank
    with pytest.raises(ValueError, match='never converted'):
        check_converted(torch.nn.Sequential(torch.nn.Linear(3, 3)))
    with pytest.raises(TypeError, match='torch.nn.Module'):
        run(np.zeros(3), x)
    with pytest.raises(ValueError, match='takes 1 input'):
        run(model, (x, x))

@pytest.mark.parametrize('make', [lambda: torch.nn.BatchNorm2d(4), lambda: torch.nn.LayerNorm([4, 5]),
                                  lambda: torch.nn.GroupNorm(2, 4), lambda: torch.nn.InstanceNorm2d(4)])
def test_eager_norm_modules(make):
    "Eager-mode quantized norm modules keep their output qparams as tensors (batch norm's of shape [1])."
    from torch.ao.quantization import QuantStub, DeQuantStub, get_default_qconfig, prepare, convert
    torch.manual_seed(0)
    m = torch.nn.Sequential(QuantStub(), make(), DeQuantStub()).eval()
    m.qconfig = get_default_qconfig('fbgemm')
    prepare(m, inplace=True)
    x = torch.randn(2, 4, 4, 5)
    m(x)
    convert(m, inplace=True)
    r = compare(m, x, engine='fbgemm')
    assert r.mismatches == 0 and r.compared > 0, str(r)

# ---- models nobody had tried: each built the way users quantize, 0 mismatches on every engine ----
nn, F = torch.nn, torch.nn.functional
from torch.ao.quantization import QuantStub, DeQuantStub

def _eager(make, shape, engine, fuse=(), batches=3, seed=0):
    import torch.ao.quantization as tq
    torch.manual_seed(seed)
    torch.backends.quantized.engine = engine
    m = make().eval()
    if fuse: tq.fuse_modules(m, list(fuse), inplace=True)
    m.qconfig = tq.get_default_qconfig(engine)
    tq.prepare(m, inplace=True)
    with torch.no_grad():
        for _ in range(batches): m(torch.randn(4, *shape))
    return tq.convert(m)

def _fx(make, shape, engine, seed=0):
    import torch.ao.quantization as tq
    from torch.ao.quantization.quantize_fx import prepare_fx, convert_fx
    torch.manual_seed(seed)
    torch.backends.quantized.engine = engine
    p = prepare_fx(make().eval(), tq.get_default_qconfig_mapping(engine), example_inputs=(torch.randn(2, *shape),))
    with torch.no_grad():
        for _ in range(3): p(torch.randn(4, *shape))
    return convert_fx(p)

def _exact(model, shape, engine, batches=(1, 3), seed=1, faults_ok=False):
    g = torch.Generator().manual_seed(seed)
    for n in batches:
        for scale in (1.0, 4.0):
            r = compare(model, torch.randn(n, *shape, generator=g) * scale, engine=engine)
            assert r.mismatches == 0 and r.compared > 0, str(r)
            assert faults_ok or not r.torch_faults, str(r)

class _SqueezeExcite(nn.Module):
    "MobileNetV2/V3 block on channels-last conv outputs: adaptive pool, SE multiply, group/instance norm, cat, bilinear."
    def __init__(self, c=29):
        super().__init__()
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.conv, self.act = nn.Conv2d(3, c, 3, stride=2, padding=1), nn.Hardswish()
        self.pool, self.fc1, self.relu, self.fc2, self.gate = nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, 8, 1), nn.ReLU(), nn.Conv2d(8, c, 1), nn.Hardsigmoid()
        self.mul, self.cat = nn.quantized.FloatFunctional(), nn.quantized.FloatFunctional()
        self.gn, self.inorm = nn.GroupNorm(1, c), nn.InstanceNorm2d(c)
        self.pool2, self.up = nn.AdaptiveAvgPool2d((2, 3)), nn.Upsample(scale_factor=2, mode='bilinear')
    def forward(self, x):
        y = self.act(self.conv(self.quant(x)))
        y = self.mul.mul(y, self.gate(self.fc2(self.relu(self.fc1(self.pool(y))))))
        z = self.cat.cat([self.inorm(self.gn(y)), y], 1)
        return self.dequant(self.up(self.pool2(z)))

@pytest.mark.parametrize('engine', supported_engines())
def test_channels_last_layers(engine):
    """torch's convolutions write channels-last tensors and the ops after them keep that layout; adaptive pooling,
    group/instance norm, cat and bilinear upsampling then take their NHWC kernels, which round differently."""
    model = _eager(lambda: _SqueezeExcite(), (3, 12, 10), engine, fuse=[['fc1', 'relu']])
    _exact(model, (3, 12, 10), engine, batches=(1, 2, 1, 3))

class _FxOps(nn.Module):
    "The functional ops FX-quantized CNNs use: scalar add/mul, clamp, pools, mean, interpolate, elu, leaky_relu, chunk."
    def __init__(self, c=10):
        super().__init__()
        self.conv, self.conv2 = nn.Conv2d(3, c, 3, padding=1), nn.Conv2d(c, c, 1)
        self.up = nn.Upsample(scale_factor=2)                       # FX leaves it in float: a gather, reproduced
        self.head = nn.Linear(c // 2, 4)
    def forward(self, x):
        x = self.conv(x)
        a, b = x.chunk(2, dim=1)
        y = torch.cat([torch.clamp(a, -0.5, 1.0), F.hardtanh(b, -0.4, 0.4)], 1)
        y = F.hardswish(y) * 0.75 + 0.25
        y = F.leaky_relu(F.elu(y), 0.1)
        y = F.interpolate(y, scale_factor=2, mode='bilinear') + self.up(y)
        y = F.max_pool2d(F.avg_pool2d(self.conv2(y), 2), 2, ceil_mode=True)
        w = F.hardsigmoid(F.adaptive_avg_pool2d(y, 1)) * y.mean((2, 3), keepdim=True)
        y = torch.sigmoid(y * w) + torch.tanh(y)
        z = F.interpolate(y, size=(y.shape[2] + 1, y.shape[3] + 2), mode='nearest').mean([2, 3])
        return self.head(F.dropout(z.view(z.size(0), -1)[:, : z.size(1) // 2], 0.1, training=False))

@pytest.mark.parametrize('engine', supported_engines())
def test_fx_functional_ops(engine):
    model = _fx(lambda: _FxOps(), (3, 9, 11), engine)
    _exact(model, (3, 9, 11), engine, faults_ok=engine == 'qnnpack')   # QNNPACK's clamp misreads channels-last inputs

class _Pools1d3d(nn.Module):
    "Eager conv1d and conv3d nets: adaptive pools 1-D/3-D, AvgPool3d, FloatFunctional add_scalar/mul_scalar."
    def __init__(self):
        super().__init__()
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.c1, self.p1 = nn.Conv1d(2, 11, 5, stride=2), nn.AdaptiveAvgPool1d(3)
        self.c3, self.a3, self.p3 = nn.Conv3d(1, 5, 3, padding=1), nn.AvgPool3d(2), nn.AdaptiveAvgPool3d((1, 2, 2))
        self.add, self.mul = nn.quantized.FloatFunctional(), nn.quantized.FloatFunctional()
    def forward(self, x):
        q = self.quant(x)
        a = self.p1(self.c1(q.flatten(2)[:, :2]))
        b = self.p3(self.a3(self.c3(q.unsqueeze(1)))).flatten(1)
        return self.dequant(self.mul.mul_scalar(self.add.add_scalar(torch.cat([a.flatten(1), b], 1), 0.3), -1.5))

@pytest.mark.parametrize('engine', [e for e in supported_engines() if e != 'qnnpack'])   # qnnpack: no conv3d
def test_eager_1d_3d_pools_and_scalar_ops(engine):
    model = _eager(lambda: _Pools1d3d(), (5, 6, 7), engine)
    _exact(model, (5, 6, 7), engine)

def test_float_ops_refused_with_layer_names():
    "Ops FX leaves in float are refused by name (torch's float kernels are not reproduced), not as 'never converted'."
    mlp = _fx(lambda: nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Linear(8, 3)), (6,), 'x86')
    with pytest.raises(ValueError, match=r"\(GELU\): gelu of a float tensor"):
        run(mlp, torch.randn(2, 6), engine='x86')
    gn = _fx(lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4)), (3, 6, 6), 'x86')
    with pytest.raises(ValueError, match=r"module '1' \(torch.nn.modules.normalization.GroupNorm\) runs in float"):
        run(gn, torch.randn(1, 3, 6, 6), engine='x86')
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k = nn.Linear(8, 8), nn.Linear(8, 8)
        def forward(self, x): return torch.matmul(self.q(x), self.k(x).transpose(-2, -1))
    with pytest.raises(ValueError, match=r"quantized::matmul"):
        run(_fx(Attn, (5, 8), 'x86'), torch.randn(2, 5, 8), engine='x86')
    dyn = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8)), {nn.Linear}, dtype=torch.qint8)
    with pytest.raises(ValueError, match=r"LayerNorm\) runs in float"):
        run(dyn, torch.randn(2, 6), engine='x86')

def test_dynamic_model_with_unconverted_stubs():
    "quantize_dynamic leaves QuantStub/DeQuantStub as identities (no static qconfig): the runner does too."
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.fc1, self.fc2, self.dequant = QuantStub(), nn.Linear(7, 9), nn.Linear(9, 3), DeQuantStub()
        def forward(self, x): return self.dequant(self.fc2(F.relu(self.fc1(self.quant(x)))))
    for engine in supported_engines():              # torch's packed weight keeps the engine it was packed under
        torch.manual_seed(0)
        torch.backends.quantized.engine = engine
        model = torch.ao.quantization.quantize_dynamic(Net().eval(), {nn.Linear}, dtype=torch.qint8)
        _exact(model, (7,), engine)

def test_transposed_conv_torch_fault_is_named():
    "x86 sends symmetric per-tensor transposed convs to oneDNN, whose result is not the convolution (conv notebook, fault 1)."
    class Dec(nn.Module):
        def __init__(self):
            super().__init__()
            self.t1, self.t2 = nn.ConvTranspose2d(3, 8, 3, stride=2, padding=1, output_padding=1), nn.ConvTranspose1d(8, 2, 4, stride=2)
        def forward(self, x): return self.t2(F.relu(self.t1(x)).flatten(2))
    for engine in ('fbgemm', 'x86', 'qnnpack'):
        model = _fx(Dec, (3, 5, 7), engine)
        _exact(model, (3, 5, 7), engine, faults_ok=True)
        r = compare(model, torch.randn(2, 3, 5, 7), engine=engine)
        if r.torch_faults: assert engine == 'x86' and all(l.torch_fault == 'onednn-conv-transpose' for l in r.torch_faults), str(r)

def test_fbgemm_direct_transposed_conv_is_a_torch_fault():
    "FBGEMM's direct transposed kernel (2 x k, channels divisible by 8, no padding): torch's output is not the convolution."
    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc, self.t = nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ConvTranspose2d(16, 16, 2, stride=2)
        def forward(self, x): return self.t(F.relu(self.enc(x)))
    model = _fx(Up, (3, 6, 6), 'fbgemm')
    r = compare(model, torch.randn(1, 3, 6, 6), engine='fbgemm')
    assert r.mismatches == 0 and [l.name for l in r.torch_faults] == ['t'], str(r)
    assert r.torch_faults[0].torch_fault == 'fbgemm-direct-conv-transpose' and 'direct transposed-conv' in str(r)

class _AvgPools1d(nn.Module):
    "AvgPool1d on a conv1d output (channels-last on some engines) and F.avg_pool1d on the quantized input."
    def __init__(self):
        super().__init__()
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.c1, self.p1 = nn.Conv1d(3, 10, 3), nn.AvgPool1d(3, 2, 1, ceil_mode=True, count_include_pad=False)
        self.cat = nn.quantized.FloatFunctional()
    def forward(self, x):
        q = self.quant(x)
        y, z = self.p1(self.c1(q)), torch.nn.functional.avg_pool1d(q, 2)
        return self.dequant(self.cat.cat([y.flatten(1), z.flatten(1)], 1))

@pytest.mark.parametrize('engine', supported_engines())
def test_avg_pool1d_module_and_functional(engine):
    _exact(_eager(lambda: _AvgPools1d(), (3, 17), engine), (3, 17), engine)
    fx = _fx(lambda: nn.Sequential(nn.Conv1d(3, 9, 3), nn.AvgPool1d(4, 3, 2)), (3, 20), engine)
    _exact(fx, (3, 20), engine)

def _subclass_graph(module):
    "A graph module quantize -> `module`: FX keeps a torch module as one call_module node."
    g = torch.fx.Graph()
    g.output(g.call_module('m', (g.call_module('quant', (g.placeholder('x'),)),)))
    root = torch.nn.Module()
    root.quant, root.m = torch.ao.nn.quantized.Quantize(0.1, 64, torch.quint8), module
    return torch.fx.GraphModule(root, g)

def test_a_subclass_never_runs_as_its_parent():
    class Mine(torch.ao.nn.quantized.Linear):
        def forward(self, x): return super().forward(x)
    with pytest.raises(ValueError, match='Mine is a subclass of .*Linear that qnb does not know'):
        run(_subclass_graph(Mine(4, 3)), torch.randn(2, 4))

def test_upsampling_modules_run_as_upsample():
    for m in (torch.nn.UpsamplingNearest2d(scale_factor=2), torch.nn.UpsamplingBilinear2d(scale_factor=2)):
        gm = _subclass_graph(m)
        x = torch.rand(1, 2, 3, 3) * 10
        torch.backends.quantized.engine = 'x86'
        assert torch.equal(run(gm, x, engine='x86').int_repr(), gm(x).int_repr())

def test_runner_names_the_layer_of_torch_errors_and_a_missing_input():
    from torch.ao.quantization import QuantStub, DeQuantStub, get_default_qconfig, prepare, convert
    if 'qnnpack' not in supported_engines(): pytest.skip('no qnnpack')
    torch.backends.quantized.engine = 'qnnpack'
    net = torch.nn.Sequential(QuantStub(), torch.nn.Conv3d(2, 3, 1), DeQuantStub()).eval()
    net.qconfig = get_default_qconfig('qnnpack')
    prepare(net, inplace=True); net(torch.randn(1, 2, 3, 3, 3)); convert(net, inplace=True)
    with pytest.raises(RuntimeError, match=r"layer '_1' \(Conv3d\): torch raised: QNNPACK only supports conv2d_unpack"):
        run(net, torch.randn(1, 2, 3, 3, 3), engine='qnnpack')
    with pytest.raises(TypeError, match='x is None'):
        run(net, None, engine='qnnpack')

def test_onednn_fused_linears_run_bit_exact():
    "FX with oneDNN's backend config fuses Linear+LeakyReLU and Linear+Tanh into nniq modules that only oneDNN runs."
    if 'onednn' not in supported_engines(): pytest.skip('no onednn')
    from torch.ao.quantization import QConfigMapping, get_default_qconfig
    from torch.ao.quantization.quantize_fx import prepare_fx, convert_fx
    from torch.ao.quantization.backend_config import get_onednn_backend_config
    torch.backends.quantized.engine = 'onednn'
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.LeakyReLU(0.07), torch.nn.Linear(32, 8), torch.nn.Tanh()).eval()
    qm = QConfigMapping().set_global(get_default_qconfig('onednn'))
    p = prepare_fx(m, qm, (torch.randn(64, 16),), backend_config=get_onednn_backend_config())
    for _ in range(3): p(torch.randn(64, 16))
    q = convert_fx(p, backend_config=get_onednn_backend_config())
    assert {'LinearLeakyReLU', 'LinearTanh'} <= {type(mm).__name__ for mm in q.modules()}
    for s in (1, 3, 10):                                   # 10: saturating
        r = compare(q, torch.randn(500, 16) * s, engine='onednn')
        assert r.mismatches == 0 and r.compared == 500 * (16 + 32 + 8 + 8), str(r)

@pytest.mark.parametrize('engine', supported_engines())
def test_dynamic_linear_relu_runs_bit_exact(engine):
    import torch.ao.nn.intrinsic as nni
    torch.backends.quantized.engine = engine
    torch.manual_seed(1)
    m = torch.ao.quantization.fuse_modules(torch.nn.Sequential(torch.nn.Linear(24, 40), torch.nn.ReLU()).eval(), [['0', '1']])
    q = torch.ao.quantization.quantize_dynamic(m, {nni.LinearReLU}, dtype=torch.qint8)
    assert type(q[0]).__name__ == 'LinearReLU' and 'dynamic' in type(q[0]).__module__
    for s in (0.1, 1, 30):
        x = torch.randn(1025, 24) * s                      # more rows than one GEMM block
        assert torch.equal(run(q, x, engine=engine), q(x))

@pytest.mark.parametrize('engine', supported_engines())
def test_dynamic_convs_run_bit_exact(engine):
    "nnqd.Conv1d/2d/3d and ConvTranspose1d/2d/3d: equal to torch, or torch's transposed oneDNN fault named by compare."
    import torch.ao.nn.quantized.dynamic as nnqd
    torch.backends.quantized.engine = engine
    for nd in (1, 2, 3):
        for name, pm in ((f'Conv{nd}d', 'zeros'), (f'Conv{nd}d', 'reflect'), (f'ConvTranspose{nd}d', 'zeros')):
            if (engine == 'qnnpack' and nd == 3) or (pm == 'reflect' and nd == 3): continue   # torch: no weight() / no 3-D reflect
            torch.manual_seed(nd)
            kw = dict(stride=2, padding=1) if 'Transpose' in name else dict(padding=1, padding_mode=pm)
            f = getattr(torch.nn, name)(4, 6, 3, **kw)
            f.qconfig = torch.ao.quantization.default_dynamic_qconfig
            net = torch.nn.Sequential(getattr(nnqd, name).from_float(f))
            x = torch.randn(2, 4, *([7] * nd)) * 2
            r = compare(net, x, engine=engine)
            assert r.mismatches == 0, (name, pm, str(r))
            if not r.torch_faults: assert torch.equal(run(net, x, engine=engine), net(x)), (name, pm)
            else: assert 'Transpose' in name and engine in ('onednn', 'x86'), (name, str(r))
