"""qnb.decomposed against torch.ops.quantized_decomposed: each check at a small size, bad input, the forum example."""
import numpy as np, pytest
torch = pytest.importorskip('torch')
from qnb import decomposed as D
from qnb.verify import CHECKS

NAMES = [k for k in CHECKS if k.startswith('decomposed_')]

def test_every_op_has_a_check():
    assert len(NAMES) == 12

@pytest.mark.parametrize('name', NAMES)
def test_check(name):
    res = CHECKS[name]('x86', np.random.default_rng(sorted(NAMES).index(name)), 30_000)
    assert res.compared >= 1 and res.mismatches == 0, res

def test_zero_point_after_rounding():
    Q = D._torch_decomposed()[1]
    x = torch.tensor([0.05, 0.15, -0.05])
    theirs = Q.quantize_per_tensor(x, 0.1, 3, 0, 255, torch.uint8).numpy()
    assert D.quantize_per_tensor(x, 0.1, 3, 0, 255, 'uint8').tolist() == theirs.tolist() == [3, 5, 3]

def test_int32_top_wraps_as_in_torch():
    x = np.array([3e9, -3e9, 2147483600.0], np.float32)       # float32(2**31 - 1) = 2**31 passes the clamp, then wraps
    import torch.ao.quantization.fx._decomposed                # registers torch.ops.quantized_decomposed
    theirs = torch.ops.quantized_decomposed.quantize_per_tensor(torch.from_numpy(x), 1.0, 0, -2**31, 2**31 - 1, torch.int32).tolist()
    assert D.quantize_per_tensor(x, 1.0, 0, -2**31, 2**31 - 1, 'int32').tolist() == theirs == [-2**31, -2**31, -2**31]
    assert D.int32_top_wraps(np.float32(2**31)) and not D.int32_top_wraps(np.float32(2**31 - 128))

def test_bfloat16_out_is_float32_of_bf16_values():
    q = np.arange(-128, 128, dtype=np.int8)
    y = D.dequantize_per_tensor(q, 0.37, 5, -128, 127, torch.int8, out_dtype=torch.bfloat16)
    assert y.dtype == np.float32 and not (y.view(np.uint32) & 0xFFFF).any()

@pytest.mark.parametrize('call, match', [
    (lambda: D.quantize_per_tensor(np.zeros(3, np.float32), 0.0, 0, 0, 255, 'uint8'), 'scale must not be 0'),
    (lambda: D.quantize_per_tensor(np.zeros(3, np.float32), 1.0, 0, -1, 255, 'uint8'), 'quant_min must be >= 0'),
    (lambda: D.quantize_per_tensor(np.zeros(3, np.float32), 1.0, 0, 0, 256, 'uint8'), 'quant_max must be <= 255'),
    (lambda: D.quantize_per_tensor(np.zeros(3), 1.0, 0, 0, 255, 'uint8'), 'input must be float32'),
    (lambda: D.quantize_per_tensor(np.zeros(3, np.float32), 1.0, 0, 0, 255, 'quint8'), 'dtype must be one of'),
    (lambda: D.quantize_per_tensor([0.0], 1.0, 0, 0, 255, 'uint8'), 'input must be a NumPy array'),
    (lambda: D.quantize_per_tensor(np.zeros(3, np.float32), 1.0, 0, 0.5, 255, 'uint8'), 'quant_min must be an int'),
    (lambda: D.quantize_per_tensor_tensor(np.zeros(3, np.float32), np.ones(2), 0, 0, 255, 'uint8'), 'scale must have exactly one element'),
    (lambda: D.dequantize_per_tensor(np.zeros(3, np.int8), 1.0, 0, 0, 255, 'uint8'), 'input must have dtype uint8'),
    (lambda: D.dequantize_per_tensor(np.zeros(3, np.uint8), 1.0, 0, 0, 255, 'uint8', out_dtype='int32'), 'out_dtype must be one of'),
    (lambda: D.quantize_per_channel(np.zeros((2, 3), np.float32), np.ones(3), np.zeros(3, np.int64), 2, 0, 255, 'uint8'), 'axis must be in'),
    (lambda: D.quantize_per_channel(np.zeros((2, 3), np.float32), np.ones(3), np.zeros(2, np.int64), 1, 0, 255, 'uint8'), 'zero_points must have 3'),
    (lambda: D.dequantize_per_channel(np.zeros((2, 3), np.uint16), np.ones(3), np.zeros(3, np.int64), 1, 0, 65535, 'uint16'), 'uint16'),
    (lambda: D.choose_qparams_tensor(np.zeros(0, np.float32), 0, 255, 1e-5, 'uint8'), 'must not be empty'),
    (lambda: D.choose_qparams_tensor(np.ones(3, np.float32), 0, 0, 1e-5, 'uint8'), 'quant_min must be < quant_max'),
    (lambda: D.choose_qparams_per_token(np.ones((2, 3), np.float32), 'uint8'), 'dtype must be int8'),
    (lambda: D.quantize_per_token(np.ones((2, 3), np.float32), np.ones((3, 1)), np.zeros((2, 1)), -128, 127, 'int8'), 'one element per token'),
    (lambda: D.quantize_per_channel_group(np.ones((2, 4), np.float32), np.ones(4), np.zeros(4), -8, 7, 'int8', 1), 'group_size must be > 1'),
    (lambda: D.quantize_per_channel_group(np.full((2, 4), np.nan, np.float32), np.ones(4), np.zeros(4), -8, 7, 'int8', 2), 'must not contain NaN'),
    (lambda: D.fake_quant_per_channel(np.ones((2, 3), np.float64), np.ones(3), np.zeros(3), 1, -128, 127), 'input must be float32'),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match): call()
