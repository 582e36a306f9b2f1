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
