"""Time qnb's convolutions against torch's quantized kernels on fixed layer shapes.

Prints, per layer: qnb's time (with the semantics of the engine it reproduces), each torch engine's time,
and the ratio qnb / fastest torch engine. Run: `python benchmarks/conv.py [--repeat N]`.
Not a test: timings depend on the machine; the issue's bar is a ratio, recorded in its closing note."""
import warnings
import numpy as np
import torch
from qnb.conv import conv_prepack, qconv_packed
from qnb.core import QArray
from timing import best_time, engines, parse_args, header, row

warnings.filterwarnings('ignore')

# (name, input shape, out channels, kernel, stride, padding, groups)
LAYERS = [
    ('resnet18 layer1 3x3', (1, 64, 56, 56), 64, 3, 1, 1, 1),
    ('resnet18 layer2 3x3 s2', (1, 64, 56, 56), 128, 3, 2, 1, 1),
    ('resnet18 layer3 3x3', (1, 256, 14, 14), 256, 3, 1, 1, 1),
    ('resnet18 downsample 1x1 s2', (1, 64, 56, 56), 128, 1, 2, 0, 1),
    ('mobilenetv2 depthwise 3x3', (1, 144, 56, 56), 144, 3, 1, 1, 144),
]

def main(argv=None):
    a = parse_args(__doc__, argv)
    rng = np.random.default_rng(0)
    header('layer', a.engine)
    for name, shape, oc, k, stride, pad, groups in LAYERS:
        x = QArray(rng.integers(0, 256, shape).astype(np.uint8), 0.02, 3, 'quint8')
        w = QArray(rng.integers(-127, 128, (oc, shape[1] // groups, k, k)).astype(np.int8), 0.005, 0, 'qint8')
        bias = rng.standard_normal(oc).astype(np.float32)
        xt, wt, bt = x.to_torch(), w.to_torch(), torch.from_numpy(bias)
        packed = conv_prepack(w, bias, stride, pad, 1, groups)      # prepared once, like torch's packed weight
        t_qnb = best_time(lambda: qconv_packed(x, packed, 0.5, 128, engine=a.engine), a.repeat)
        t_torch = {}
        for e in engines():
            torch.backends.quantized.engine = e
            packed = torch.ops.quantized.conv2d_prepack(wt, bt, [stride] * 2, [pad] * 2, [1, 1], groups)
            t_torch[e] = best_time(lambda: torch.ops.quantized.conv2d(xt, packed, 0.5, 128), a.repeat)
        row(name, t_qnb, t_torch)

if __name__ == '__main__': main()
