"""Small converted models the explain/export tests share (built here, not from a zoo)."""
import torch
nn = torch.nn

class Net(nn.Module):
    "Quant → conv+BN+ReLU → depthwise conv+ReLU6 (or ReLU) → residual add → max pool (or nothing) → linear+ReLU → linear."
    def __init__(self, relu6=True, pool=True):
        super().__init__()
        self.quant, self.dequant = torch.ao.quantization.QuantStub(), torch.ao.quantization.DeQuantStub()
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.dw, self.act = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU6() if relu6 else nn.ReLU()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.skip = nn.quantized.FloatFunctional()
        self.fc1, self.relu2, self.fc2 = nn.Linear(8 * (16 if pool else 64), 16), nn.ReLU(), nn.Linear(16, 5)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(self.quant(x))))
        x = self.pool(self.skip.add(self.act(self.dw(x)), x))
        return self.dequant(self.fc2(self.relu2(self.fc1(torch.flatten(x, 1)))))

def small_model(engine, seed=0, relu6=True, pool=True, with_float=False):
    "A `Net`, fused, calibrated on random data and converted under `engine` (and the fused float model before prepare)."
    import copy
    from torch.ao.quantization import get_default_qconfig, prepare, convert, fuse_modules
    torch.manual_seed(seed)
    net = Net(relu6, pool).eval()
    net.bn1.running_mean.uniform_(-0.5, 0.5); net.bn1.running_var.uniform_(0.2, 2.0)
    torch.backends.quantized.engine = engine
    fuse_modules(net, [['conv1', 'bn1', 'relu1'], ['fc1', 'relu2']], inplace=True)
    float_net = copy.deepcopy(net)
    net.qconfig = get_default_qconfig(engine)
    prepare(net, inplace=True)
    for _ in range(4): net(torch.randn(4, 3, 8, 8))
    q = convert(net)
    return (float_net, q) if with_float else q

def fbgemm_model():
    "What `qnb export --model _models:fbgemm_model` loads in the tests."
    return small_model('fbgemm')

class BnAddNet(nn.Module):
    "Quant → BN+ReLU (3 channels) → conv → BN (37 channels) ⊕ 1×1 conv (add_relu) → BN3d ⊕ skip (add) → pool → linear."
    def __init__(self):
        super().__init__()
        self.quant, self.dequant = torch.ao.quantization.QuantStub(), torch.ao.quantization.DeQuantStub()
        self.bn0, self.relu0 = nn.BatchNorm2d(3), nn.ReLU()
        self.conv1, self.bn1, self.conv2 = nn.Conv2d(3, 37, 3, padding=1), nn.BatchNorm2d(37), nn.Conv2d(3, 37, 1)
        self.bn3d, self.skip1, self.skip2 = nn.BatchNorm3d(37), nn.quantized.FloatFunctional(), nn.quantized.FloatFunctional()
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(37, 5)

    def forward(self, x):
        x = self.relu0(self.bn0(self.quant(x)))
        y = self.skip1.add_relu(self.bn1(self.conv1(x)), self.conv2(x))
        z = self.skip2.add(self.bn3d(y.unsqueeze(2)).squeeze(2), y)
        return self.dequant(self.fc(torch.flatten(self.pool(z), 1)))

def bn_add_model(engine, seed=0):
    "A `BnAddNet` with batch-norm statistics far from the identity (some gammas negative), calibrated and converted."
    from torch.ao.quantization import get_default_qconfig, prepare, convert, fuse_modules
    torch.manual_seed(seed)
    net = BnAddNet().eval()
    for bn in (net.bn0, net.bn1, net.bn3d):
        bn.running_mean.uniform_(-0.5, 0.5); bn.running_var.uniform_(0.2, 2.0)
        bn.weight.data.uniform_(-1.5, 1.5); bn.bias.data.uniform_(-0.3, 0.3)
    torch.backends.quantized.engine = engine
    fuse_modules(net, [['bn0', 'relu0']], inplace=True)
    net.qconfig = get_default_qconfig(engine)
    prepare(net, inplace=True)
    for _ in range(4): net(torch.randn(4, 3, 8, 8))
    return convert(net)
