"""PyTorch's quantized kernels derived in notebooks and reproduced bit for bit in NumPy

Modules:

- `qnb.activation`: `relu`, `relu6`, `hardtanh`, `clamp` on quantized tensors: the output keeps the input's scale and zero point, and the bounds are quantized once with them.
- `qnb.batchnorm`: `quantized::batch_norm1d/2d/3d` (and `_relu`): one multiplier and one offset per channel, then a vector body and a scalar tail that round differently on each CPU capability.
- `qnb.elementwise`: `quantized::add` / `add_relu` / `mul` / `mul_relu` with numpy broadcasting, `add_scalar` / `mul_scalar`, and `cat`: a vector body and a scalar tail that round differently, QNNPACK's fixed-point add, and the scalar ops' qparam shortcuts.
- `qnb.linear`: `quantized::linear` / `linear_relu` (static) and `quantized::linear_dynamic` (float in, float out), engine by engine.
- `qnb.norm`: `quantized::layer_norm`, `quantized::group_norm`, `quantized::instance_norm`: integer statistics, float normalisation, and two kernels depending on the input's memory layout.
- `qnb.pool`: `max_pool1d/2d/3d` (a maximum of integers), `avg_pool2d/3d` and `adaptive_avg_pool2d/3d` on quantized tensors, NCHW and channels-last kernels; all keep the input's qparams.
- `qnb.upsample`: `upsample_nearest2d/3d` (and `nearest-exact`), `upsample_bilinear2d` and `F.interpolate` on quantized tensors: source indices computed in float, a bilinear blend of the raw integers, and a channels-last kernel whose multiply-adds fuse."""

__version__ = "0.0.1"
