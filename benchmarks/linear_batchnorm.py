"""Time qnb's linear and batch norm against torch's quantized kernels on fixed shapes.

Prints qnb's time, each torch engine's time and qnb / fastest torch engine. Not a test.
Run: `python benchmarks/linear_batchnorm.py [--repeat N]`."""
import warnings
import numpy as np
import torch
from qnb.core import QArray
from qnb.linear import linear_prepack, qlinear_packed, qlinear_dynamic
from qnb.batchnorm import qbatch_norm
from timing import best_time, engines, parse_args, header, row

warnings.filterwarnings('ignore')

def main(argv=None):
    a = parse_args(__doc__, argv)
    rng = np.random.default_rng(0)
    header('op', a.engine)
    for M, K, N in [(1, 4096, 1000), (128, 768, 3072)]:
        x = QArray(rng.integers(0, 256, (M, K)).astype(np.uint8), 0.02, 3, 'quint8')
        w = QArray(rng.integers(-127, 128, (N, K)).astype(np.int8), 0.005, 0, 'qint8')
        b = rng.standard_normal(N).astype(np.float32)
        xt, wt, bt = x.to_torch(), w.to_torch(), torch.from_numpy(b)
        t_torch = {}
        for e in engines():
            torch.backends.quantized.engine = e
            p = torch.ops.quantized.linear_prepack(wt, bt)
            t_torch[e] = best_time(lambda: torch.ops.quantized.linear(xt, p, 0.5, 128), a.repeat)
        packed = linear_prepack(w, b)      # prepared once, like torch's packed weight
        row(f"linear {M}x{K}->{N}", best_time(lambda: qlinear_packed(x, packed, 0.5, 128, engine=a.engine), a.repeat), t_torch)
        xf = torch.randn(M, K)
        t_torch = {}
        for e in engines():
            torch.backends.quantized.engine = e
            p = torch.ops.quantized.linear_prepack(wt, bt)
            t_torch[e] = best_time(lambda: torch.ops.quantized.linear_dynamic(xf, p, True), a.repeat)
        xn = xf.numpy()
        row(f"linear_dynamic {M}x{K}->{N}", best_time(lambda: qlinear_dynamic(xn, w, b, engine=a.engine), a.repeat), t_torch)
    shape = (32, 64, 56, 56)
    x = QArray(rng.integers(0, 256, shape).astype(np.uint8), 0.02, 3, 'quint8')
    C = shape[1]
    prm = [rng.standard_normal(C).astype(np.float32) for _ in range(3)] + [rng.uniform(0.5, 2, C).astype(np.float32)]
    xt = x.to_torch()
    t_torch = {}
    for e in engines():
        torch.backends.quantized.engine = e
        tp = [torch.from_numpy(v) for v in prm]
        t_torch[e] = best_time(lambda: torch.ops.quantized.batch_norm2d(xt, tp[0], tp[1], tp[2], tp[3], 1e-5, 0.1, 128), a.repeat)
    row("batch_norm2d 32x64x56x56", best_time(lambda: qbatch_norm(x, prm[0], prm[1], prm[2], prm[3], 1e-5, 0.1, 128), a.repeat), t_torch)

if __name__ == '__main__': main()
