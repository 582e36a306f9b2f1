"""export: integer-only tables (.npz and a C header that compiles, and computes what qnb computes), golden vectors
that reload and re-run to the same integers, per-layer mismatch counts of the integer-only requantization."""
import shutil, subprocess
import numpy as np
import pytest
import torch
from qnb.export import export_tables, load_tables, golden_vectors, check_golden, fixedpoint_layer, c_name
from qnb.requantize import requantize_fixedpoint
from qnb.verify import supported_engines
from _models import small_model

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
    assert set(fixed) == {'conv1', 'dw', 'fc1', 'fc2'}
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
    assert main(['export', str(tmp_path / 's'), '--case', 'conv-seed004']) == 0
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
