"""The README's two commands and its example stay in step with the project: the example is nbs/index.ipynb's cell."""
import json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def test_readme_example_is_the_index_notebooks():
    readme = (ROOT / 'README.md').read_text()
    example = re.search(r"A quantized conv on torch tensors.*?```python\n(.*?)```", readme, re.S).group(1).rstrip('\n')
    cells = [''.join(c['source']) for c in json.loads((ROOT / 'nbs/index.ipynb').read_text())['cells']]
    assert example in cells, "README's example differs from nbs/index.ipynb: copy the notebook cell into the README"
    exec(compile(example, 'README', 'exec'), {})

def test_readme_starts_with_the_two_commands():
    block = re.search(r"```sh\n(.*?)```", (ROOT / 'README.md').read_text(), re.S).group(1).strip().splitlines()
    assert len(block) == 2 and 'qnb verify' in block[0] and 'pytest tests' in block[1]
