"""explain: the step-by-step integer equals the full kernel's and torch's for random (op, index) pairs on every
engine; models and modules; bad input."""
import functools, time, zlib
import numpy as np
import pytest
import torch
from qnb.core import QArray
from qnb.explain import explain, Explanation, _explain_call, check_index
from qnb.conv import random_conv_case, torch_fault, _case_qarrays, qnb_conv
from qnb.linear import random_linear_case, _case_weight
from qnb.batchnorm import random_batch_norm_case
from qnb.activation import random_clamp_case
from qnb.elementwise import random_binary_case
from qnb.pool import random_max_pool_case, qnb_max_pool, max_pool_torch_fault
from qnb.verify import supported_engines, call_isolated
from _models import small_model

ENGINES = supported_engines()

def _rng(*key): return np.random.default_rng(zlib.crc32('/'.join(map(str, key)).encode()))

def _indices(rng, shape, k):
    return [tuple(int(rng.integers(0, n)) for n in shape) for _ in range(k)]

class Tally:
    def __init__(self): self.pairs, self.mismatches, self.skipped, self.by_op = 0, [], 0, {}
    def add(self, op, e: Explanation):
        self.pairs += 1
        self.by_op[op] = self.by_op.get(op, 0) + 1
        bad = [n for n in e.notes if n.startswith('inconsistent')]
        if not (e.result == e.kernel == e.torch) or bad or not e.match:
            self.mismatches.append((op, e.index, e.result, e.kernel, e.torch, e.title, bad))

def _conv_pairs(engine, rng, tally, n_cases, per_case):
    cases = [random_conv_case(rng, engine) for _ in range(n_cases)]
    theirs_all, _ = call_isolated('qnb.conv:torch_conv', cases)      # torch's conv can crash on valid cases: isolated
    for case, theirs in zip(cases, theirs_all):
        if theirs is None or isinstance(theirs, dict): tally.skipped += 1; continue
        ours = qnb_conv(case)
        if np.any(ours != theirs) and torch_fault(case, ours, theirs): tally.skipped += 1; continue
        xq, wq = _case_qarrays(case)
        params = dict(stride=case['stride'], padding=case['padding'], dilation=case['dilation'], groups=case['groups'],
                      scale=case['sy'], zero_point=case['zy'], relu=case['relu'])
        for index in _indices(rng, theirs.shape, per_case):
            tally.add('conv', _explain_call(f"conv{case['ndim']}d", (xq, wq, case['bias']), params, index, engine, None,
                                            torch_output=theirs))

def _linear_pairs(engine, rng, tally, n_cases, per_case):
    for _ in range(n_cases):
        c = random_linear_case(rng, engine)
        xq = QArray(c['x'], c['sx'], c['zx'], 'quint8')
        out_shape = c['x'].shape[:-1] + (c['w'].shape[0],)
        for index in _indices(rng, out_shape, per_case):
            tally.add('linear', explain('linear', xq, _case_weight(c), c['bias'], scale=c['sy'], zero_point=c['zy'],
                                        relu=c['relu'], index=index, engine=engine))

def _batch_norm_pairs(engine, rng, tally, n_cases, per_case):
    for _ in range(n_cases):
        c = random_batch_norm_case(rng)
        xq = QArray(c['q'], c['sx'], c['zx'], c['dtype'])
        for index in _indices(rng, c['q'].shape, per_case):
            tally.add('batch_norm', explain('batch_norm', xq, c['weight'], c['bias'], c['mean'], c['var'], c['eps'], c['sy'],
                                            c['zy'], relu=c['relu'], index=index, engine=engine))

def _clamp_pairs(engine, rng, tally, n_cases, per_case):
    for _ in range(n_cases):
        c = random_clamp_case(rng)
        if c['q'].size == 0: continue
        x = QArray(c['q'], c['scale'], c['zp'], c['dtype'])
        lo, hi = c['min'], c['max']
        if c['op'] == 'hardtanh':
            lo, hi = (-1.0 if lo is None else lo), (1.0 if hi is None else hi)
            call = dict(op='hardtanh', args=(x, min(lo, hi), max(lo, hi)))
        elif c['op'] == 'clamp':
            if lo is None and hi is None: hi = 0.0
            call = dict(op='clamp', args=(x, lo, hi))
        else: call = dict(op=c['op'], args=(x,))
        for index in _indices(rng, c['q'].shape, per_case):
            try: e = explain(call['op'], *call['args'], index=index, engine=engine)
            except ValueError: tally.skipped += 1; continue                # QNNPACK's refusals (torch refuses too)
            tally.add(call['op'], e)

def _add_pairs(engine, rng, tally, n_cases, per_case):
    for _ in range(n_cases):
        c = random_binary_case(rng, engine)
        (sa, sb, so), (za, zb, zo) = c['scales'], c['zps']
        a, b = QArray(c['a'], sa, za, c['dtype']), QArray(c['b'], sb, zb, c['dtype'])
        shape = np.broadcast_shapes(c['a'].shape, c['b'].shape)             # add broadcasts
        if 0 in shape: continue
        for index in _indices(rng, shape, per_case):
            try: e = explain('add', a, b, so, zo, relu=c['relu'], index=index, engine=engine)
            except ValueError: tally.skipped += 1; continue                # QNNPACK's limits (torch refuses too)
            tally.add('add', e)

def _pool_quantize_pairs(engine, rng, tally, n_cases, per_case):
    for _ in range(n_cases):
        if engine != 'qnnpack':
            c = dict(random_max_pool_case(rng), engine=engine)
            x = QArray(c['q'], 0.1, 3 if c['dtype'] == 'quint8' else -3, c['dtype'])
            try: shape = qnb_max_pool(c).shape
            except ValueError: shape = None                                 # refused by qnb and torch alike
            if shape is not None and not max_pool_torch_fault(c, shape):                        # torch's channels-last bug: counted in qnb.pool
                for index in _indices(rng, shape, per_case):
                    tally.add('max_pool', explain(f"max_pool{c['ndim']}d", x, c['k'], c['s'], c['p'], c['d'], c['ceil'],
                                                  index=index, engine=engine))
        x = (rng.standard_normal((2, 3, 4)) * 10.0 ** rng.uniform(-2, 2)).astype(np.float32)
        if rng.random() < 0.3: x = ((rng.integers(-300, 300, x.shape) + 0.5) * 0.25).astype(np.float32)   # ties
        dtype = str(rng.choice(['quint8', 'qint8', 'qint32']))
        s = float(np.exp(rng.uniform(-6, 1))) if rng.random() < 0.6 else 0.25
        z = int(rng.integers(-100, 100)) if dtype != 'quint8' else int(rng.integers(0, 256))
        for index in _indices(rng, x.shape, per_case):
            tally.add('quantize', explain('quantize_per_tensor', x, s, z, dtype, index=index, engine=engine))

@pytest.mark.parametrize('engine', ENGINES)
def test_explain_matches_torch(engine):
    "Thousands of random (op, index) pairs: explain's integer = the full kernel's = torch's."
    rng, tally, t0 = _rng('explain', engine), Tally(), time.perf_counter()
    _conv_pairs(engine, rng, tally, 70, 4)
    _linear_pairs(engine, rng, tally, 50, 4)
    _batch_norm_pairs(engine, rng, tally, 45, 4)
    _clamp_pairs(engine, rng, tally, 45, 4)
    _add_pairs(engine, rng, tally, 35, 4)
    _pool_quantize_pairs(engine, rng, tally, 30, 3)
    print(f"\n{engine}: {tally.pairs} (op, index) pairs {tally.by_op}, {len(tally.mismatches)} mismatches, "
          f"{tally.skipped} skipped (torch crash/fault or refusal), {time.perf_counter() - t0:.1f} s")
    assert not tally.mismatches, tally.mismatches[:5]
    assert tally.pairs >= 1000

@pytest.mark.parametrize('engine', ENGINES)
def test_explain_model_layers(engine):
    "Every explainable layer of a converted model, random indices: explain = torch (the model converted on that engine)."
    net, rng = small_model(engine), _rng('model', engine)
    x = torch.randn(2, 3, 8, 8)
    outs = {}
    class Rec(torch.fx.Interpreter):
        def run_node(self, n):
            v = super().run_node(n); outs[n.name] = v; return v
    from qnb.model import model_graph
    gm = model_graph(net)
    Rec(gm).run(x)
    layers = ['quant', 'conv1', 'dw', 'act', 'add', 'pool', 'fc1', 'fc2']
    if engine == 'qnnpack': layers.remove('pool')              # QNNPACK's own max pool: not reproduced by qnb
    n = faults = 0
    for layer in layers:
        shape = outs[layer].shape
        for index in _indices(rng, shape, 6):
            e = explain(net, x, layer=layer, index=index, engine=engine)
            assert not any(m.startswith('inconsistent') for m in e.notes), (layer, index, e)
            assert e.result == e.kernel
            assert e.match or e.torch_fault, (layer, index, e)
            n, faults = n + 1, faults + e.torch_fault
    print(f"\n{engine}: {n} model-layer pairs, {faults} at torch's QNNPACK channels-last clamp fault")
    assert faults == 0 or engine == 'qnnpack'

def test_explain_module_and_rendering():
    net = small_model('fbgemm')
    xq = net.quant(torch.randn(1, 3, 8, 8))
    e = explain(net.conv1, xq, index=(0, 3, 2, 2), engine='fbgemm')
    assert e.match and e.title.startswith('ConvReLU2d')
    text, md, html = str(e), e._repr_markdown_(), e._repr_html_()
    for s in (text, md, html):
        assert 'int32 accumulator' in s and 'multiplier as m0·2^-n' in s and 'match' in s
    assert 'torch: ' in text and text.rstrip().endswith('match')

def test_forum_cases():
    from qnb.explain import forum_case, FORUM_CASES
    results = {name: forum_case(name) for name in FORUM_CASES}
    assert all(e.match for e in results.values())
    e = results['conv-seed004']
    assert e.result == 30 and e.tables[0][2][-1][1:] == (31, 30, 30)
    assert '31 (hand) and 30 (kernel) part ways at the multiplier s_x·s_w/s_y' in str(e)
    assert results['batchnorm-seed000'].result == 52 and results['relu6-seed002'].result == 255
    assert len({r[-1] for r in results['fused-bias-seed002'].tables[-1][2]}) > 1     # engines disagree on this input

def test_cli_explain(capsys):
    from qnb.cli import main
    assert main(['explain', '--case', 'conv-seed004']) == 0
    out = capsys.readouterr().out
    assert 'part ways at the multiplier' in out and out.rstrip().endswith('match')
    with pytest.raises(SystemExit): main(['explain', '--case', 'nope'])

@functools.cache
def _bad_inputs():
    net = small_model('x86')
    x = torch.randn(1, 3, 8, 8)
    xq = QArray(np.zeros((1, 2, 4, 4), np.uint8), 0.1, 0, 'quint8')
    return [
        (lambda: explain(net, x, layer='conv9', index=(0,)), "layer must be one of the model's layers: 'quant', 'conv1', .*; got 'conv9'"),
        (lambda: explain(net, x, layer='conv1', index=(0, 8, 0, 0)), r'index\[1\] must be in \[0, 7\] \(output shape \(1, 8, 8, 8\)\), got 8'),
        (lambda: explain(net, x, layer='fc2', index=(0, 5)), r'index\[1\] must be in \[0, 4\]'),
        (lambda: explain(net, x, layer='fc2', index=(0, 1, 2)), 'index must have 2 entries'),
        (lambda: explain(net, x, index=(0,)), 'op is a model: give the layer'),
        (lambda: explain('relu', xq, index=(0, 0, 4, 0)), r'index\[2\] must be in \[0, 3\]'),
        (lambda: explain('relu', xq, index=(0, 0, 0, -5)), r'index\[3\] must be in \[0, 3\]'),
        (lambda: explain('softmax', xq, index=(0,)), 'op must be one of conv1d'),
        (lambda: explain('relu', xq, layer='x', index=(0, 0, 0, 0)), 'layer is only for a model'),
    ]

@pytest.mark.parametrize('i', range(9))
def test_bad_input(i):
    call, match = _bad_inputs()[i]
    with pytest.raises(ValueError, match=match): call()

def test_qnnpack_channels_last_clamp_fault():
    "torch's QNNPACK relu6/hardtanh/clamp read a channels-last input's memory as NCHW: explain says so."
    xt = torch.quantize_per_tensor(torch.arange(36.).reshape(1, 4, 3, 3) * 0.03, 0.01, 100, torch.quint8)
    cl = xt.contiguous(memory_format=torch.channels_last)
    for op, args in (('relu6', ()), ('hardtanh', (0.0, 0.2)), ('clamp', (0.05, 0.3))):
        e = explain(op, cl, *args, index=(0, 1, 1, 0), engine='qnnpack')
        assert e.torch_fault and not e.match and 'channels-last' in e.notes[-1], (op, e)
        assert explain(op, xt, *args, index=(0, 1, 1, 0), engine='qnnpack').match
        assert explain(op, cl, *args, index=(0, 1, 1, 0), engine='fbgemm').match
    assert explain('relu', cl, index=(0, 1, 1, 0), engine='qnnpack').match
