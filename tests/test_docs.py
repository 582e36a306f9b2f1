"The docs site, built without quarto and opened in headless Chromium (`qnb docs --check` as a test)."
from pathlib import Path
import pytest
from qnb.docs import build_site, check_site, find_chromium

ROOT = Path(__file__).resolve().parents[1]
PAGES = ('index', 'conv', 'batchnorm', 'requantize')

def test_site_in_chromium():
    "Build `_docs/` from the executed notebooks, then open every page: no missing page, broken link, console error, broken image or raw TeX."
    if find_chromium() is None:
        pytest.skip('no Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)')
    site = build_site(root=ROOT)
    problems = check_site(site, required=PAGES)
    assert not problems, f'{len(problems)} problem(s) in the docs site:\n' + '\n'.join(problems)
    for name in PAGES: assert (site/'_screenshots'/f'{name}.png').stat().st_size > 10_000
