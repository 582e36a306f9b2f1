"""PyTorch's quantized kernels derived in notebooks and reproduced bit for bit in NumPy

Modules:

- `qnb.activation`: `relu`, `relu6`, `hardtanh`, `clamp` (the input's qparams, bounds quantized once) and `hardswish`, `hardsigmoid`, `sigmoid`, `tanh`, `leaky_relu`, `elu`, `gelu`, `softmax` (dequantize, float math as torch's vector body, scalar tail or QNNPACK table rounds it, quantize).
- `qnb.batchnorm`: `quantized::batch_norm1d/2d/3d` (and `_relu`): one multiplier and one offset per channel, then a vector body and a scalar tail that round differently on each CPU capability.
- `qnb.elementwise`: `quantized::add` / `add_relu` / `mul` / `mul_relu` for two quantized tensors of the same shape, and `cat`: a vector body and a scalar tail that round differently, and QNNPACK's fixed-point add.
- `qnb.linear`: `quantized::linear` / `linear_relu` (static) and `quantized::linear_dynamic` (float in, float out), engine by engine.
- `qnb.norm`: `quantized::layer_norm`, `quantized::group_norm`, `quantized::instance_norm`: integer statistics, float normalisation, and two kernels depending on the input's memory layout."""

__version__ = "0.0.1"
