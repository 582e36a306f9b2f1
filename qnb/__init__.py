"""PyTorch's quantized kernels derived in notebooks and reproduced bit for bit in NumPy

Modules:

- `qnb.activation`: `relu`, `relu6`, `hardtanh`, `clamp` (the input's qparams, bounds quantized once) and `hardswish`, `hardsigmoid`, `sigmoid`, `tanh`, `leaky_relu`, `elu`, `gelu`, `softmax` (dequantize, float math as torch's vector body, scalar tail or QNNPACK table rounds it, quantize).
- `qnb.batchnorm`: `quantized::batch_norm1d/2d/3d` (and `_relu`): one multiplier and one offset per channel, then a vector body and a scalar tail that round differently on each CPU capability.
- `qnb.decomposed`: `torch.ops.quantized_decomposed.*` (the quantize, dequantize and qparams ops that `torch.export` + torchao's `convert_pt2e` leave in a graph) reproduced bit for bit in NumPy, eqs. (D1)–(D15).
- `qnb.elementwise`: `quantized::add` / `add_relu` / `mul` / `mul_relu` with numpy broadcasting, `add_scalar` / `mul_scalar`, and `cat`: a vector body and a scalar tail that round differently, QNNPACK's fixed-point add, and the scalar ops' qparam shortcuts.
- `qnb.eltwise`: The float32 activations oneDNN's int8 matmul applies between the dequantized sum and the output scale (relu, leaky relu, tanh, GELU in both forms, hardtanh, hardswish, swish), emulated instruction by instruction: what `quantized::linear_leaky_relu`, `quantized::linear_tanh` and `onednn::qlinear_pointwise` compute.
- `qnb.explain`: `explain(op, *inputs, index=...)` and `explain(model, x, layer=..., index=...)`: how one output element is computed, step by step, with torch's output for the same element and match or mismatch.
- `qnb.explore`: Interactive views (ipywidgets, matplotlib): a quantizer explorer, a requantization explorer and a per-layer error plot for a converted model, each with a static figure for the rendered docs.
- `qnb.export`: `export_tables(model, path)`: integer-only parameter tables of a converted model as .npz and a C header; `golden_vectors(model, x, path)`: every layer's integers for one input, and what integer-only requantization changes.
- `qnb.fused`: Conv–BN and Linear–BN folding as `torch.ao` does it at `convert`, the weight observer that picks the int8 weight scales, and the fused kernels (`conv+relu`, `linear+relu`, `bn+relu`) that come out.
- `qnb.inductor`: `run(gm, x)` executes a converted pt2e graph as `torch.compile` (inductor, `freezing = True`) runs it, with qnb's kernels only: the oneDNN int8 convs and linears inductor's pattern matcher made (`qnb.onednn`), and the float order of inductor's generated C++ for everything between them (quantize, dequantize, element-wise ops, its own reductions and layer norm); `compare(gm, x)` holds every oneDNN node and every output against the compiled model; eqs. (I1)–(I8).
- `qnb.linear`: `quantized::linear` / `linear_relu` (static), oneDNN's `linear_leaky_relu` / `linear_tanh`, and `quantized::linear_dynamic` / `linear_relu_dynamic` (float in, float out), engine by engine.
- `qnb.model`: `run(model, x)` executes a converted PyTorch model (eager mode or FX) with qnb's kernels only; `compare(model, x)` runs it beside torch and reports every layer's mismatches.
- `qnb.norm`: `quantized::layer_norm`, `quantized::group_norm`, `quantized::instance_norm`: integer statistics, float normalisation, and two kernels depending on the input's memory layout.
- `qnb.onednn`: `torch.ops.onednn.qlinear_pointwise` (+`.tensor`, `.binary`, `.binary_tensor`), `qconv_pointwise` (1-D/2-D/3-D, +`.tensor`) and `qconv2d_pointwise.binary` (+`.binary_tensor`): the ops `torch.compile` lowers pt2e-quantized models to on x86, reproduced bit for bit with every post-op and output dtype torch accepts, eqs. (O1)–(O8).
- `qnb.pool`: `max_pool1d/2d/3d` (a maximum of integers), `avg_pool1d/2d/3d`, `adaptive_avg_pool2d/3d` and `mean` on quantized tensors, NCHW and channels-last kernels; all keep the input's qparams.
- `qnb.pt2e`: `run(gm, x)` executes a converted pt2e graph as PyTorch runs it uncompiled (eager ATen on CPU) with qnb's kernels only, and `compare(gm, x)` holds every node against torch: the `quantized_decomposed` nodes and the element-wise, pooling, reduction and normalisation ops between them bit for bit; float conv/linear/matmul as exact sums rounded once, torch's differences measured and named; eqs. (G1)–(G18).
- `qnb.upsample`: `upsample_nearest2d/3d` (and `nearest-exact`), `upsample_bilinear2d` and `F.interpolate` on quantized tensors: source indices computed in float, a bilinear blend of the raw integers, and a channels-last kernel whose multiply-adds fuse.
- `qnb.zoo`: Five small converted models built in the repo (no downloads), each calibrated on generated data for a chosen engine, and the check that runs every one of them on every engine with 0 mismatching layers."""

__version__ = "0.0.1"
