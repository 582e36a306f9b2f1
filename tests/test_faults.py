"""The fault registry (`qnb.faults`): complete entries, every id a classifier can return registered, every repro showing its fault."""
import ast, json, re
from dataclasses import fields
from pathlib import Path
import pytest
from qnb.faults import FAULTS, KINDS, ENGINES, LOWERINGS, Fault, fault, describe, run_repro, faults_table, fault_section

ROOT = Path(__file__).resolve().parents[1]
ID = re.compile(r'[a-z0-9]+(-[a-z0-9]+)+')
REPORTERS = ('describe', 'fault', 'add_torch_fault', 'add_torch_crash')   # calls that take an id

def test_every_entry_is_complete():
    assert len(FAULTS) >= 20
    for id, f in FAULTS.items():
        assert f.id == id and ID.fullmatch(id) and f.kind in KINDS and f.engines and set(f.engines) <= set(ENGINES + LOWERINGS), f
        for name in (fl.name for fl in fields(Fault) if fl.name != 'details'):          # details is optional
            v = getattr(f, name)
            assert v and (isinstance(v, tuple) or v.strip()), (id, name)
        assert f.since == f.torch_version == '2.13.0', id
        assert any((ROOT/'nbs').glob(f'[0-9][0-9]_{f.notebook}.ipynb')), (id, f.notebook)
        assert f'{{#{id}}}' in fault_section(id) and f'](#{id})' in faults_table()
        assert describe(id).startswith(f'torch fault {id}: ') and describe(id).endswith(f'faults.html#{id})')

def _ids_in(tree) -> set:
    "Kebab-case string constants a module's classifiers can return or report: inside functions named *fault* (and "
    "`_wrong_convolution`), passed to a reporting call, or assigned to a `.torch_fault` attribute."
    found = set()
    def consts(node): return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str) and ID.fullmatch(n.value)}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and ('fault' in node.name or node.name == '_wrong_convolution'): found |= consts(node)
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, 'id', '')
            if name in REPORTERS: found |= set().union(*map(consts, node.args + [k.value for k in node.keywords]))
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == 'torch_fault' for t in node.targets):
            found |= consts(node.value)
    return found

def test_every_classifier_id_is_registered():
    ids = {}
    for p in sorted((ROOT/'qnb').glob('*.py')):
        if p.name in ('faults.py', '_modidx.py'): continue
        for id in _ids_in(ast.parse(p.read_text())): ids.setdefault(id, []).append(p.name)
    assert not {k: v for k, v in ids.items() if k not in FAULTS}, 'ids no registry entry has'
    for module, some in (('conv.py', 'onednn-conv-transpose'), ('model.py', 'qnnpack-clamp-channels-last'),
                         ('pool.py', 'channels-last-layout'), ('norm.py', 'group-norm-nhwc-batch-wrap'),
                         ('upsample.py', 'upsample-nearest3d-nhwc-copy'), ('explain.py', 'onednn-conv2d-add-one-channel')):
        assert module in ids.get(some, []), (module, some, ids)          # the scan sees each module's classifiers

def test_notebook_links_name_registered_faults():
    "Every `faults.html#<id>` link in the notebooks points at a section of the faults page."
    for p in sorted((ROOT/'nbs').glob('*.ipynb')):
        for c in json.loads(p.read_text())['cells']:
            for id in re.findall(r'faults\.html#([\w-]+)', ''.join(c['source'])):
                assert id in FAULTS, (p.name, id)

def test_unknown_ids_are_refused():
    with pytest.raises(KeyError, match='known: '): fault('onednn-transposed-conv')
    from qnb.verify import CheckResult
    with pytest.raises(KeyError): CheckResult('conv', 'x86').add_torch_fault(1, fault='no-such-fault')

@pytest.mark.parametrize('id', list(FAULTS))
def test_repro_shows_the_fault(id):
    "Each repro runs on plain torch (a crash in its own child process) and still shows its fault on this torch."
    out, shown = run_repro(id)
    assert shown, f'{id} no longer shows on this torch:\n{out}'
    if fault(id).kind == 'crash': assert 'subprocess.run' in fault(id).repro       # the crash itself happens in a child
