"""export: integer-only tables (.npz and a C header that compiles, and computes what qnb computes), golden vectors
that reload and re-run to the same integers, per-layer mismatch counts of the integer-only requantization."""
import shutil, subprocess
import numpy as np
import pytest
import torch
from qnb.export import (export_tables, load_tables, golden_vectors, check_golden, fixedpoint_layer, c_name, batch_norm_fixedpoint,
                        fixedpoint_batch_norm, add_fixedpoint, fixedpoint_add, fixedpoint_mismatches, rounding_shift_rne)
from qnb.requantize import requantize_fixedpoint
from qnb.verify import supported_engines
from _models import small_model, bn_add_model

ENGINES = supported_engines()
CC = shutil.which('cc') or shutil.which('gcc')

def _model(engine):
    # QNNPACK: qnb does not reproduce its own max pool, and torch's QNNPACK ReLU6 misreads channels-last inputs
    return small_model(engine, relu6=engine != 'qnnpack', pool=engine != 'qnnpack')

@pytest.mark.parametrize('engine', ENGINES)
def test_tables_and_header(engine, tmp_path):
    net = _model(engine)
    tables = export_tables(net, tmp_path / 'tiny', engine)
    conv = tables['conv1']
    assert conv['op'] == 'conv2d' and conv['weight'].dtype == np.int8 and conv['bias'].dtype == np.int32
    assert conv['m0'].shape == (8,) and np.all(conv['m0'] >= 2**30) and conv['clamp_min'] == conv['output_zero_point']  # fused ReLU
    assert tables['fc2']['clamp_min'] == 0 and tables['fc1']['clamp_min'] == tables['fc1']['output_zero_point']
    back = load_tables(tmp_path / 'tiny')
    assert list(back) == list(tables)
    for layer, t in tables.items():
        for k, v in t.items():
            assert np.array_equal(np.asarray(back[layer][k]), np.asarray(v)), (layer, k)
    if CC is None: pytest.skip('no C compiler')
    r = subprocess.run([CC, '-fsyntax-only', '-Wall', '-Wextra', '-x', 'c', str(tmp_path / 'tiny.h')], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr, r.stderr

@pytest.mark.skipif(CC is None, reason='no C compiler')
def test_header_computes_the_integer_only_layer(tmp_path):
    "A C program that includes the header computes conv1 and fc2 integer-only, as qnb.export.fixedpoint_layer does."
    net = _model('fbgemm')
    tables = export_tables(net, tmp_path / 'net', 'fbgemm')
    x = torch.randn(1, 3, 8, 8)
    xq = net.quant(x)
    h = net.fc1(torch.flatten(net.pool(net.skip.add(net.act(net.dw(net.conv1(xq))), net.conv1(xq))), 1))
    want_conv, want_fc = fixedpoint_layer(tables['conv1'], xq).ravel(), fixedpoint_layer(tables['fc2'], h).ravel()
    arr = lambda name, a: f"static const int32_t {name}[{a.size}] = {{{', '.join(map(str, a.ravel().tolist()))}}};"
    P = 'qnb_net_'
    prog = f'''#include <stdio.h>
#include "net.h"
{arr('xin', xq.int_repr().numpy().astype(np.int64))}
{arr('hin', h.int_repr().numpy().astype(np.int64))}
int main(void) {{
    /* conv1: 3 -> 8 channels, 3x3, stride 1, padding 1, on an 8x8 input */
    for (int o = 0; o < 8; o++) for (int i = 0; i < 8; i++) for (int j = 0; j < 8; j++) {{
        int32_t acc = 0;
        for (int c = 0; c < 3; c++) for (int u = 0; u < 3; u++) for (int v = 0; v < 3; v++) {{
            int r = i * {P}conv1_stride[0] - {P}conv1_padding[0] + u, s = j * {P}conv1_stride[1] - {P}conv1_padding[1] + v;
            if (r < 0 || r >= 8 || s < 0 || s >= 8) continue;
            acc += (xin[(c * 8 + r) * 8 + s] - {P}conv1_input_zero_point) *
                   ({P}conv1_weight[((o * 3 + c) * 3 + u) * 3 + v] - {P}conv1_weight_zero_point[o]);
        }}
        printf("%d\\n", qnb_requantize(acc + {P}conv1_bias[o], {P}conv1_m0[o], {P}conv1_shift[o],
                                      {P}conv1_output_zero_point, {P}conv1_clamp_min, {P}conv1_clamp_max));
    }}
    for (int o = 0; o < 5; o++) {{
        int32_t acc = 0;
        for (int k = 0; k < 16; k++) acc += (hin[k] - {P}fc2_input_zero_point) * ({P}fc2_weight[o * 16 + k] - {P}fc2_weight_zero_point[o]);
        printf("%d\\n", qnb_requantize(acc + {P}fc2_bias[o], {P}fc2_m0[o], {P}fc2_shift[o], {P}fc2_output_zero_point,
                                      {P}fc2_clamp_min, {P}fc2_clamp_max));
    }}
    return 0;
}}
'''
    (tmp_path / 'main.c').write_text(prog)
    r = subprocess.run([CC, '-std=c99', '-Wall', '-O1', '-o', str(tmp_path / 'main'), str(tmp_path / 'main.c')], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = np.array(subprocess.run([str(tmp_path / 'main')], capture_output=True, text=True, check=True).stdout.split(), np.int64)
    np.testing.assert_array_equal(got, np.concatenate([want_conv, want_fc]))

@pytest.mark.skipif(CC is None, reason='no C compiler')
def test_c_requantize_matches_numpy(tmp_path):
    "The header's qnb_requantize = qnb.requantize.requantize_fixedpoint on random accumulators, multipliers and shifts."
    net = _model('x86')
    export_tables(net, tmp_path / 'm', 'x86')
    rng = np.random.default_rng(7)
    n = 3000
    acc = np.concatenate([rng.integers(-2**31, 2**31, n // 3), rng.integers(-2**20, 2**20, n - n // 3)])
    m0 = rng.integers(2**30, 2**31, n)
    shift = rng.integers(20, 60, n)
    zp = rng.integers(0, 256, n)
    want = requantize_fixedpoint(acc, m0, shift, zp[:, None][:, 0] * 0 + zp, 'quint8')
    rows = ',\n'.join(f"{{{a}LL, {m}LL, {s}, {z}}}" for a, m, s, z in zip(acc, m0, shift, zp))
    prog = f'''#include <stdio.h>
#include "m.h"
static const long long T[{n}][4] = {{{rows}}};
int main(void) {{ for (int i = 0; i < {n}; i++) printf("%d\\n", qnb_requantize((int32_t)T[i][0], (int32_t)T[i][1], (int32_t)T[i][2], (int32_t)T[i][3], 0, 255)); return 0; }}
'''
    (tmp_path / 'r.c').write_text(prog)
    r = subprocess.run([CC, '-std=c99', '-O1', '-o', str(tmp_path / 'r'), str(tmp_path / 'r.c')], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = np.array(subprocess.run([str(tmp_path / 'r')], capture_output=True, text=True, check=True).stdout.split(), np.int64)
    np.testing.assert_array_equal(got, want)

@pytest.mark.parametrize('engine', ENGINES)
def test_golden_vectors(engine, tmp_path):
    net = _model(engine)
    torch.manual_seed(3)
    x = torch.randn(8, 3, 8, 8)
    report = golden_vectors(net, x, tmp_path / 'golden', engine)
    print(f"\n{report}")
    assert report.qnb_mismatches == 0 and not report.notes
    fixed = {l.name: l.fixedpoint_mismatches for l in report.layers if l.fixedpoint_mismatches is not None}
    assert set(fixed) == {'conv1', 'dw', 'add', 'fc1', 'fc2'}
    assert all(v <= 0.01 * l.compared for l in report.layers for v in [l.fixedpoint_mismatches] if v is not None)
    with np.load(tmp_path / 'golden.npz') as z:
        assert np.array_equal(z['input'], x.numpy()) and z['conv1'].dtype == np.uint8 and z['output'].shape == (8, 5)
        assert int(z['conv1/fixedpoint_mismatches']) == fixed['conv1']
    again = check_golden(net, tmp_path / 'golden')
    assert again.torch_mismatches == 0 and again.qnb_mismatches == 0, str(again)

def test_bad_paths_and_names(tmp_path):
    assert c_name('features.0.conv') == 'features_0_conv' and c_name('_1') == 'l1' or c_name('_1') == '1'
    with pytest.raises(ValueError, match='model could not be traced|is a float module'):
        export_tables(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), tmp_path / 'x')

def test_cli_export(tmp_path, capsys):
    from qnb.cli import main
    torch.save(torch.randn(2, 3, 8, 8), tmp_path / 'x.pt')
    assert main(['export', str(tmp_path / 'out'), '--model', '_models:fbgemm_model', '--input', str(tmp_path / 'x.pt'),
                 '--engine', 'fbgemm']) == 0
    assert (tmp_path / 'out.npz').exists() and (tmp_path / 'out.h').exists() and (tmp_path / 'out_golden.npz').exists()
    assert 'integer-only requantization vs torch' in capsys.readouterr().out
    assert main(['export', str(tmp_path / 's'), '--case', 'conv-30-not-31']) == 0
    with np.load(tmp_path / 's_golden.npz') as z: assert z['conv1'][0, 0, 3, 0] == 30

def test_fx_model(tmp_path):
    "An FX-converted model (quantize_per_tensor nodes with get_attr qparams): explain, tables, header, golden vectors."
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx, convert_fx
    from qnb.explain import explain
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(), torch.nn.Conv2d(6, 4, 3),
                            torch.nn.Hardtanh(0., 3.), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3)).eval()
    torch.backends.quantized.engine = 'x86'
    x = torch.randn(2, 3, 8, 8)
    p = prepare_fx(m, get_default_qconfig_mapping('x86'), (x,))
    for _ in range(3): p(torch.randn(2, 3, 8, 8))
    q = convert_fx(p)
    for layer, index in (('quantize_per_tensor', (1, 2, 3, 4)), ('_0', (1, 5, 7, 0)), ('_4', (0, 3, 5, 5)), ('_6', (1, 2))):
        assert explain(q, x, layer=layer, index=index, engine='x86').match
    tables = export_tables(q, tmp_path / 'fx', 'x86')
    assert tables['_0']['op'] == 'conv2d' and tables['_4']['op'] == 'hardtanh' and tables['_6']['op'] == 'linear'
    if CC: assert subprocess.run([CC, '-fsyntax-only', '-x', 'c', str(tmp_path / 'fx.h')]).returncode == 0
    report = golden_vectors(q, x, tmp_path / 'g', 'x86')
    assert report.qnb_mismatches == 0
    again = check_golden(q, tmp_path / 'g')
    assert again.torch_mismatches == 0 and again.qnb_mismatches == 0

@pytest.mark.skipif(CC is None, reason='no C compiler')
def test_header_with_bias_free_conv_compiles(tmp_path):
    "A conv without bias exports float zeros; each must be a valid C float literal ('0.0f', not '0f')."
    from torch.ao.quantization import QuantStub, DeQuantStub, get_default_qconfig, prepare, convert
    from qnb.export import _c_float
    assert [_c_float(v) for v in (0.0, 5.0, 0.25, np.float32(1e30), float('nan'))] == ['0.0f', '5.0f', '0.25f', '1.00000002e+30f', '0.0f']
    torch.manual_seed(0)
    net = torch.nn.Sequential(QuantStub(), torch.nn.Conv2d(2, 3, 3, bias=False), DeQuantStub()).eval()
    net.qconfig = get_default_qconfig('fbgemm')
    prepare(net, inplace=True)
    net(torch.randn(2, 2, 6, 6))
    convert(net, inplace=True)
    tables = export_tables(net, tmp_path / 'nobias', 'fbgemm')
    assert not tables['_1']['bias_float'].any()
    r = subprocess.run([CC, '-fsyntax-only', '-Wall', '-Wextra', '-x', 'c', str(tmp_path / 'nobias.h')], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr, r.stderr


# --- batch norm and add (eqs. X1-X8) ---

def test_batch_norm_fixedpoint_is_exact():
    "Every input byte of 40 channels: the integer-only batch norm is rne(alpha (q - z_x) + offset) on rationals."
    from fractions import Fraction
    rng = np.random.default_rng(1)
    alpha = (rng.standard_normal(40) * 10.0 ** rng.uniform(-4, 3, 40)).astype(np.float32)
    offset = (rng.standard_normal(40) * 10.0 ** rng.uniform(-3, 3, 40)).astype(np.float32)
    alpha[:2], offset[2] = 0, 0                                                   # gamma = 0; no offset
    m0, shift, bias = batch_norm_fixedpoint(alpha, offset)
    assert np.all((m0 == 0) | (np.abs(m0) >= 2**30)) and np.all((0 <= shift) & (shift <= 62)) and np.all(np.abs(bias) < 2**61)
    q = np.repeat(np.arange(-128, 128, dtype=np.int8)[:, None], 40, 1)            # qint8 input, batch_norm1d layout
    y = fixedpoint_batch_norm(q, -3, m0, shift, bias, 5, -128, 127)
    exact = lambda d, c: round(Fraction(float(alpha[c])) * d + Fraction(float(offset[c])))     # half to even
    want = np.array([[min(max(5 + exact(int(v) + 3, c), -128), 127) for c in range(40)] for v in range(-128, 128)])
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(rounding_shift_rne(np.array([-3, -1, 1, 3, 9, -9]), np.array([1, 1, 1, 1, 0, 2])), [-2, 0, 0, 2, 9, -2])

def test_batch_norm_fixedpoint_vs_torch_kernel():
    """verify's random batch-norm layers (ranks 2-5, crafted ties, extremes) against torch: every mismatch is an output
    whose exact value is within float32 rounding of a half-integer, or beyond 2^31 where torch's int32 zero-point add wraps."""
    from qnb.batchnorm import random_batch_norm_case, batch_norm_params, torch_batch_norm
    from qnb.core import dtype_range
    rng = np.random.default_rng(2)
    compared = mismatches = 0
    for _ in range(40):
        c = random_batch_norm_case(rng)
        alpha, offset = batch_norm_params(c['weight'], c['bias'], c['mean'], c['var'], c['eps'], c['sx'], c['sy'])
        if not (np.isfinite(alpha).all() and np.isfinite(offset).all()):
            with pytest.raises(ValueError, match='alpha and offset must be finite'): batch_norm_fixedpoint(alpha, offset)
            continue
        lo, hi = dtype_range(c['dtype'])
        y = fixedpoint_batch_norm(c['q'], c['zx'], *batch_norm_fixedpoint(alpha, offset), c['zy'], max(lo, c['zy']) if c['relu'] else lo, hi)
        bad = y != torch_batch_norm(c)
        shape = (1, -1) + (1,) * (c['q'].ndim - 2)
        product = alpha.astype(np.float64).reshape(shape) * (c['q'].astype(np.float64) - c['zx'])
        v = product + offset.astype(np.float64).reshape(shape)
        near_half = np.abs(v - np.floor(v) - 0.5) <= 2.0**-22 * (np.abs(product) + np.abs(v) + 1)
        assert not (bad & ~near_half & (np.abs(v) < 2**31 - 512)).any()
        compared, mismatches = compared + y.size, mismatches + int(bad.sum())
    assert compared > 5000 and 0 < mismatches < 0.01 * compared, (mismatches, compared)

def test_add_fixedpoint():
    "TFLite's parameters; the real-number add away from rounding boundaries; agreement with QNNPACK's fixed-point add."
    from qnb.elementwise import add_qnnpack
    p = add_fixedpoint(0.02, 0.05, 0.04)
    assert (p['left_shift'], p['b_m0'], p['b_shift']) == (20, 2**30, 31)          # the larger scale maps to exactly 1/2
    qa, qb = np.repeat(np.arange(256), 256), np.tile(np.arange(256), 256)
    rng = np.random.default_rng(3)
    differ = 0
    for _ in range(6):
        sa, sb, sy = np.exp(rng.uniform(-5, 1, 3))
        za, zb, zy = (int(v) for v in rng.integers(0, 256, 3))
        y = fixedpoint_add(qa, za, qb, zb, add_fixedpoint(sa, sb, sy), zy, zy, 255)    # add_relu
        real = zy + (sa * (qa - za) + sb * (qb - zb)) / sy
        far = np.abs(real - np.floor(real) - 0.5) > 1e-4
        np.testing.assert_array_equal(y[far], np.clip(np.floor(real[far] + 0.5), zy, 255))
        try: differ += int((y != add_qnnpack(qa, za, sa, qb, zb, sb, sy, zy, True)).sum())
        except ValueError: pass                                                   # a ratio QNNPACK refuses
    assert differ <= 5
    with pytest.raises(ValueError, match='left_shift must be'): add_fixedpoint(0.1, 0.1, 0.1, left_shift=23)

def test_fixedpoint_layer_refuses(tmp_path):
    tables = export_tables(_model('x86'), tmp_path / 't', 'x86')
    with pytest.raises(ValueError, match="table must be a conv, linear, batch_norm, add or add_relu layer's table, got op 'relu6'"):
        fixedpoint_layer(tables['act'], np.zeros((1, 8, 2, 2), np.uint8))
    with pytest.raises(ValueError, match='other must be the second input of the add layer'):
        fixedpoint_layer(tables['add'], torch.quantize_per_tensor(torch.zeros(1, 8, 2, 2), 0.1, 0, torch.quint8))

@pytest.mark.parametrize('engine', ENGINES)
def test_bn_add_tables_golden(engine, tmp_path):
    "Batch-norm and add layers: tables (.npz, header), golden vectors with their integer-only mismatches, check_golden."
    net = bn_add_model(engine)
    tables = export_tables(net, tmp_path / 'bnadd', engine)
    bn, add = tables['bn1'], tables['add_relu']
    assert bn['op'] == 'batch_norm' and bn['bias'].dtype == np.int64 and bn['m0'].dtype == np.int32 and (bn['m0'] < 0).any()
    np.testing.assert_array_equal(bn['m0'] * 2.0 ** -bn['shift'].astype(np.float64), bn['alpha'].astype(np.float64))
    assert tables['bn0']['clamp_min'] == tables['bn0']['output_zero_point'] and tables['bn3d']['op'] == 'batch_norm'
    assert add['left_shift'] == 20 and add['clamp_min'] == add['output_zero_point'] and tables['add']['clamp_min'] == 0
    assert max(add['a_multiplier'], add['b_multiplier']) == 0.5
    back = load_tables(tmp_path / 'bnadd')
    for layer in ('bn1', 'add_relu'):
        for k, v in tables[layer].items(): assert np.array_equal(np.asarray(back[layer][k]), np.asarray(v)), (layer, k)
    if CC:
        r = subprocess.run([CC, '-fsyntax-only', '-Wall', '-Wextra', '-x', 'c', str(tmp_path / 'bnadd.h')], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr, r.stderr
    torch.manual_seed(3)
    report = golden_vectors(net, torch.randn(16, 3, 8, 8), tmp_path / 'g', engine)
    assert report.qnb_mismatches == 0 and not report.notes, str(report)
    fixed = {l.name: (l.fixedpoint_mismatches, l.compared) for l in report.layers if l.fixedpoint_mismatches is not None}
    assert {'bn0', 'bn1', 'bn3d', 'add_relu', 'add'} <= set(fixed)
    assert all(fixed[k][0] <= 0.001 * fixed[k][1] for k in ('bn0', 'bn1', 'bn3d', 'add_relu', 'add')), fixed
    again = check_golden(net, tmp_path / 'g')
    assert again.torch_mismatches == 0 and again.qnb_mismatches == 0, str(again)

@pytest.mark.skipif(CC is None, reason='no C compiler')
def test_header_computes_bn_and_add(tmp_path):
    "A C program with the header's qnb_batch_norm and qnb_add equals fixedpoint_layer on bn0, bn1, bn3d, add_relu and add."
    from qnb.model import model_graph, torch_node_outputs
    net = bn_add_model('x86')
    tables = export_tables(net, tmp_path / 'net', 'x86')
    torch.manual_seed(5)
    theirs, _ = torch_node_outputs(model_graph(net), torch.randn(2, 3, 8, 8).numpy(), 'x86')
    ints = lambda name: theirs[name].int_repr().numpy().astype(np.int64).ravel()
    arr = lambda name, a: f"static const int32_t {name}[{a.size}] = {{{', '.join(map(str, a.tolist()))}}};"
    P = 'qnb_net_'
    def bn_loop(layer, src, C, HW, n):
        return f"""    for (int i = 0; i < {n}; i++) {{ int c = (i / {HW}) % {C};
        printf("%d\\n", qnb_batch_norm({src}[i], {P}{layer}_input_zero_point, {P}{layer}_m0[c], {P}{layer}_shift[c], {P}{layer}_bias[c],
               {P}{layer}_output_zero_point, {P}{layer}_clamp_min, {P}{layer}_clamp_max)); }}"""
    def add_loop(layer, a, b, n):
        f = lambda k: f"{P}{layer}_{k}"
        return f"""    for (int i = 0; i < {n}; i++)
        printf("%d\\n", qnb_add({a}[i], {f('a_zero_point')}, {b}[i], {f('b_zero_point')}, {f('left_shift')}, {f('a_m0')}, {f('a_shift')},
               {f('b_m0')}, {f('b_shift')}, {f('m0')}, {f('shift')}, {f('output_zero_point')}, {f('clamp_min')}, {f('clamp_max')}));"""
    n0, n1 = ints('quant').size, ints('conv1').size
    prog = '\n'.join(['#include <stdio.h>', '#include "net.h"', arr('x0', ints('quant')), arr('x1', ints('conv1')), arr('xa', ints('bn1')),
                       arr('xb', ints('conv2')), arr('x3', ints('unsqueeze')), arr('z', ints('squeeze')), arr('y', ints('skip1_activation_post_process')),
                       'int main(void) {', bn_loop('bn0', 'x0', 3, 64, n0), bn_loop('bn1', 'x1', 37, 64, n1), add_loop('add_relu', 'xa', 'xb', n1),
                       bn_loop('bn3d', 'x3', 37, 64, n1), add_loop('add', 'z', 'y', n1), '    return 0;', '}'])
    (tmp_path / 'main.c').write_text(prog)
    r = subprocess.run([CC, '-std=c99', '-Wall', '-Wextra', '-O1', '-o', str(tmp_path / 'main'), str(tmp_path / 'main.c')],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and not r.stderr, r.stderr
    got = np.array(subprocess.run([str(tmp_path / 'main')], capture_output=True, text=True, check=True).stdout.split(), np.int64)
    want = np.concatenate([fixedpoint_layer(tables[k], *[theirs[a] for a in ins]).ravel() for k, ins in (
        ('bn0', ['quant']), ('bn1', ['conv1']), ('add_relu', ['bn1', 'conv2']), ('bn3d', ['unsqueeze']),
        ('add', ['squeeze', 'skip1_activation_post_process']))])
    np.testing.assert_array_equal(got, want)
    assert (np.asarray(want[n0:n0 + n1]) != ints('bn1')).sum() <= 2                 # and torch's bn1, nearly

def test_fixedpoint_mismatches_capabilities():
    "Batch norm and add re-run by torch under another capability in a child process; conv/linear once ('any')."
    net = bn_add_model('x86')
    torch.manual_seed(6)
    rows = fixedpoint_mismatches(net, torch.randn(8, 3, 8, 8), 'x86', ['default'])
    by = {(r['layer'], r['capability']): r for r in rows}
    assert {('bn1', 'default'), ('add_relu', 'default'), ('add', 'default'), ('conv1', 'any'), ('fc', 'any')} <= set(by)
    assert all(r['mismatches'] is not None and r['mismatches'] <= 0.01 * r['compared'] for r in rows), rows

def test_zoo_resnet_adds(tmp_path):
    "The zoo's ResNet: its three add_relu layers get integer-only tables and golden mismatch counts."
    from qnb.zoo import build
    net, x = build('resnet', 'fbgemm')
    report = golden_vectors(net, x, tmp_path / 'r', 'fbgemm')
    adds = [l for l in report.layers if l.op == 'add_relu']
    assert len(adds) == 3 and all(l.fixedpoint_mismatches is not None and l.fixedpoint_mismatches <= 2 for l in adds), str(report)

@pytest.mark.skipif(CC is None, reason='no C compiler')
def test_c_bn_add_match_numpy(tmp_path):
    "The header's qnb_batch_norm and qnb_add = fixedpoint_batch_norm and fixedpoint_add on random parameters and inputs."
    export_tables(_model('x86'), tmp_path / 'm', 'x86')
    rng = np.random.default_rng(8)
    n = 2000
    m0 = np.where(rng.random(n) < 0.05, 0, rng.integers(2**30, 2**31, n) * rng.choice([-1, 1], n))
    shift = rng.integers(0, 63, n)
    bias = rng.integers(-2**61 + 1, 2**61, n) >> rng.integers(0, 61, n)
    q, zx, zy = rng.integers(0, 256, n), rng.integers(0, 256, n), rng.integers(0, 256, n)
    want_bn = [int(fixedpoint_batch_norm(np.array([[q[i]]]), zx[i], [m0[i]], [shift[i]], [bias[i]], zy[i], 0, 255)[0, 0]) for i in range(n)]
    scales = np.exp(rng.uniform(-6, 2, (n, 3)))
    qb, zb = rng.integers(0, 256, n), rng.integers(0, 256, n)
    ps = [add_fixedpoint(*s) for s in scales]
    want_add = [int(fixedpoint_add(q[i], zx[i], qb[i], zb[i], ps[i], zy[i], zy[i] if i % 2 else 0, 255)) for i in range(n)]
    bn_rows = ',\n'.join(f"{{{a}, {b}, {c}, {d}LL, {e}, {f}}}" for a, b, c, d, e, f in zip(q, zx, m0, bias, shift, zy))
    add_rows = ',\n'.join(f"{{{q[i]}, {zx[i]}, {qb[i]}, {zb[i]}, {p['a_m0']}, {p['a_shift']}, {p['b_m0']}, {p['b_shift']}, {p['m0']}, "
                          f"{p['shift']}, {zy[i]}, {zy[i] if i % 2 else 0}}}" for i, p in enumerate(ps))
    prog = f'''#include <stdio.h>
#include "m.h"
static const long long B[{n}][6] = {{{bn_rows}}};
static const long long A[{n}][12] = {{{add_rows}}};
int main(void) {{
    for (int i = 0; i < {n}; i++)
        printf("%d\\n", qnb_batch_norm((int32_t)B[i][0], (int32_t)B[i][1], (int32_t)B[i][2], (int32_t)B[i][4], B[i][3], (int32_t)B[i][5], 0, 255));
    for (int i = 0; i < {n}; i++) {{
        const long long *a = A[i];
        printf("%d\\n", qnb_add((int32_t)a[0], (int32_t)a[1], (int32_t)a[2], (int32_t)a[3], 20, (int32_t)a[4], (int32_t)a[5], (int32_t)a[6],
                               (int32_t)a[7], (int32_t)a[8], (int32_t)a[9], (int32_t)a[10], (int32_t)a[11], 255));
    }}
    return 0;
}}
'''
    (tmp_path / 'r.c').write_text(prog)
    r = subprocess.run([CC, '-std=c99', '-Wall', '-Wextra', '-O1', '-o', str(tmp_path / 'r'), str(tmp_path / 'r.c')], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and not r.stderr, r.stderr
    got = np.array(subprocess.run([str(tmp_path / 'r')], capture_output=True, text=True, check=True).stdout.split(), np.int64)
    np.testing.assert_array_equal(got, np.array(want_bn + want_add))
