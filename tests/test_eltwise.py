"""oneDNN's eltwise post-ops (qnb.eltwise) against the installed torch's, float bits compared."""
import os, subprocess, sys, zlib
import numpy as np
import pytest
from qnb.eltwise import ONEDNN_POST_OPS, check_onednn_eltwise

@pytest.mark.parametrize('name', ONEDNN_POST_OPS)
def test_post_op_matches_onednn(name):
    r = check_onednn_eltwise('onednn', np.random.default_rng(zlib.crc32(name.encode())), 100_000, names=(name,))
    assert r.mismatches == 0 and r.compared >= 100_000, r

CHILD = """
import numpy as np, warnings
warnings.filterwarnings('ignore')
from qnb.eltwise import onednn_tanh, torch_onednn_eltwise, draw_eltwise_inputs
x = draw_eltwise_inputs(np.random.default_rng(0), 1 << 12)
theirs = torch_onednn_eltwise(x, 'tanh').view(np.uint32)
print(int((onednn_tanh(x, fma=False).view(np.uint32) != theirs).sum()), int((onednn_tanh(x).view(np.uint32) != theirs).sum()))
"""

def test_tanh_without_fma_on_avx():
    "oneDNN limited to AVX (no FMA) multiplies then adds in tanh's Horner loop: `fma=False`."
    out = subprocess.run([sys.executable, '-c', CHILD], env={**os.environ, 'ONEDNN_MAX_CPU_ISA': 'AVX'},
                         capture_output=True, text=True, check=True).stdout.split()
    without_fma, with_fma = map(int, out)
    assert without_fma == 0 and with_fma > 0, (without_fma, with_fma)
