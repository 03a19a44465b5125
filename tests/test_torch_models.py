"""Patched networks: ResNet-18 and VGG-11 as torchvision defines them (written here: torchvision
cannot be installed beside the pinned CPU torch), patched and unpatched, in float64; patch and
unpatch themselves; the nn twins; torch.compile of a model with poolkit modules.

The model definitions are also used by benchmarks/bench_torch.py.
"""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

import poolkit.torch as pt

# FX tracing and torch.load use torch.jit internally, which warns in 2.13.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")

# --------------------------------------------------------------------------------------------
# torchvision's ResNet-18 and VGG-11 (torchvision/models/resnet.py, vgg.py: the same layers,
# strides, paddings, pooling and initialisation). ``width`` divides every channel count and
# the VGG classifier's hidden size, so tests can run them small; width=1 is torchvision's.


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, layers=(2, 2, 2, 2), num_classes=1000, width=1):
        super().__init__()
        w = [c // width for c in (64, 128, 256, 512)]
        self.inplanes = w[0]
        self.conv1 = nn.Conv2d(3, w[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(w[0], layers[0])
        self.layer2 = self._make_layer(w[1], layers[1], stride=2)
        self.layer3 = self._make_layer(w[2], layers[2], stride=2)
        self.layer4 = self._make_layer(w[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(w[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes=1000, width=1) -> ResNet:
    return ResNet((2, 2, 2, 2), num_classes, width)


class VGG(nn.Module):
    def __init__(self, features, num_classes=1000, width=1, dropout=0.5):
        super().__init__()
        hidden = 4096 // width
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 // width * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def vgg11(num_classes=1000, width=1) -> VGG:
    layers, c = [], 3
    for v in VGG11_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c, v // width, 3, padding=1), nn.ReLU(inplace=True)]
            c = v // width
    return VGG(nn.Sequential(*layers), num_classes, width)


# --------------------------------------------------------------------------------------------
# Patched equals unpatched.


def _run(model, x, seed=0):
    """Output and input gradient of one training-mode step (dropout masks from ``seed``)."""
    x = x.detach().clone().requires_grad_()
    torch.manual_seed(seed)
    y = model(x)
    (gx,) = torch.autograd.grad(y, x, torch.ones_like(y) / y.numel())
    return y.detach(), gx


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12 * float(b.abs().max()))


def _names_of(model, classes):
    return [n for n, m in model.named_modules() if type(m) in classes]


@pytest.mark.parametrize("build,x_shape", [
    (lambda: resnet18(num_classes=10, width=4), (2, 3, 64, 64)),
    (lambda: vgg11(num_classes=10, width=16), (2, 3, 32, 32)),
], ids=["resnet18", "vgg11"])
@pytest.mark.parametrize("memory", ["contiguous", "channels_last"])
def test_patched_model_equals_unpatched(build, x_shape, memory):
    torch.manual_seed(0)
    fmt = torch.channels_last if memory == "channels_last" else torch.contiguous_format
    model = build().double().to(memory_format=fmt)
    x = torch.randn(x_shape, dtype=torch.float64).contiguous(memory_format=fmt)
    expected_names = _names_of(model, (nn.MaxPool2d, nn.AdaptiveAvgPool2d))
    y0, g0 = _run(model, x)
    text, state = repr(model), copy.deepcopy(model.state_dict())
    names = pt.patch(model)
    assert names == expected_names and len(names) in (2, 6)  # ResNet: 1 + 1, VGG: 5 + 1
    assert _names_of(model, (nn.MaxPool2d, nn.AdaptiveAvgPool2d)) == []
    assert _names_of(model, (pt.nn.MaxPool2d, pt.nn.AdaptiveAvgPool2d)) == names
    assert repr(model) == text
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())

    y1, g1 = _run(model, x)
    # Max pooling is exact; adaptive average pooling sums in another order: float64 rounding.
    _close(y1, y0)
    _close(g1, g0)
    assert y1.stride() == y0.stride() and g1.stride() == g0.stride()
    assert pt.unpatch(model) == names
    assert _names_of(model, (nn.MaxPool2d, nn.AdaptiveAvgPool2d)) == expected_names


class SegNetLike(nn.Module):
    """SegNet's pooling pattern (max pooling with indices, unpooling with them) and torch's
    other pooling modules with state: LPPool2d, FractionalMaxPool2d with fixed samples."""

    def __init__(self, batch):
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.mid = nn.Conv2d(4, 4, 3, padding=1)
        self.unpool = nn.MaxUnpool2d(2, 2)
        self.dec = nn.Conv2d(4, 2, 3, padding=1)
        self.lp = nn.LPPool2d(2, 3, stride=2)
        samples = torch.rand(batch, 2, 2, generator=torch.Generator().manual_seed(1))
        self.frac = nn.FractionalMaxPool2d(3, output_size=5, _random_samples=samples)
        self.head = nn.AdaptiveMaxPool2d((2, None))

    def forward(self, x):
        e = torch.relu(self.enc(x))
        p, idx = self.pool(e)
        d = self.dec(self.unpool(torch.relu(self.mid(p)), idx, output_size=e.shape[-2:]))
        return torch.cat([self.lp(d).flatten(1), self.frac(d).flatten(1),
                          self.head(d).flatten(1)], 1)


def test_patched_segnet_like_model_equals_unpatched():
    torch.manual_seed(0)
    model = SegNetLike(batch=2).double()
    model.frac._random_samples = model.frac._random_samples.double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    y0, g0 = _run(model, x)
    text = repr(model)
    names = pt.patch(model)
    assert names == ["pool", "unpool", "lp", "frac", "head"]
    assert repr(model) == text
    y1, g1 = _run(model, x)
    # LP with an even p equals torch's on any input, to rounding (another summation order).
    _close(y1, y0)
    _close(g1, g0)
    n_lp = 2 * 7 * 7
    assert torch.equal(y1[:, n_lp:], y0[:, n_lp:])  # fractional and adaptive max: exact


def test_patch_keeps_the_module_objects_and_their_hooks():
    model = nn.Sequential(nn.MaxPool2d(2), nn.Sequential(nn.AvgPool1d(3)), nn.Flatten())
    pool = model[0]
    calls = []
    pool.register_forward_hook(lambda m, i, o: calls.append(o.shape))
    assert pt.patch(model) == ["0", "1.0"]
    assert model[0] is pool and type(pool) is pt.nn.MaxPool2d
    assert isinstance(pool, nn.MaxPool2d) and type(model[1][0]) is pt.nn.AvgPool1d
    pool(torch.zeros(1, 1, 4, 4))
    assert calls == [torch.Size([1, 1, 2, 2])]
    assert pt.patch(model) == []  # already patched
    assert pt.unpatch(model) == ["0", "1.0"] and type(pool) is nn.MaxPool2d
    assert pt.unpatch(model) == []


def test_patch_leaves_subclasses_and_twins_a_bare_module():
    class MyPool(nn.MaxPool2d):
        def forward(self, x):
            return super().forward(x) * 2

    model = nn.Sequential(MyPool(2))
    assert pt.patch(model) == [] and type(model[0]) is MyPool
    single = nn.AvgPool2d(2)
    assert pt.patch(single) == [""] and type(single) is pt.nn.AvgPool2d
    with pytest.raises(TypeError, match="torch.nn.Module"):
        pt.patch("not a model")


def test_every_torch_pooling_module_has_a_twin():
    pooling = torch.nn.modules.pooling
    classes = {getattr(pooling, n) for n in pooling.__all__}
    assert len(classes) == 20 and classes == set(pt.nn.TWINS)


def test_patched_model_pickles_and_copies():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2, return_indices=False))
    pt.patch(model)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert type(loaded[1]) is pt.nn.MaxPool2d
    assert type(copy.deepcopy(model)[1]) is pt.nn.MaxPool2d
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(loaded(x), model(x))


# --------------------------------------------------------------------------------------------
# The nn twins.

TWIN_CASES = [
    (nn.MaxPool1d, (3,), dict(stride=2, padding=1, dilation=2, ceil_mode=True), (2, 3, 11)),
    (nn.MaxPool2d, (3, 2), dict(padding=1, return_indices=True), (2, 3, 9, 9)),
    (nn.MaxPool3d, ((2, 3, 3),), dict(stride=1, dilation=(1, 2, 1)), (1, 2, 5, 8, 6)),
    (nn.AvgPool1d, (3, 2, 1), dict(count_include_pad=False), (2, 3, 10)),
    (nn.AvgPool2d, (3,), dict(stride=2, padding=1, ceil_mode=True, divisor_override=4),
     (2, 3, 9, 9)),
    (nn.AvgPool3d, (2,), dict(stride=1, padding=1, count_include_pad=False), (1, 2, 4, 5, 6)),
    (nn.AdaptiveAvgPool1d, (4,), {}, (2, 3, 11)),
    (nn.AdaptiveAvgPool2d, ((None, 3),), {}, (2, 3, 9, 7)),
    (nn.AdaptiveAvgPool3d, (2,), {}, (1, 2, 5, 4, 3)),
    (nn.AdaptiveMaxPool1d, (4, True), {}, (2, 3, 11)),
    (nn.AdaptiveMaxPool2d, (3,), dict(return_indices=True), (2, 3, 9, 7)),
    (nn.AdaptiveMaxPool3d, ((2, 1, 3),), {}, (1, 2, 5, 4, 3)),
    (nn.LPPool1d, (2, 3), dict(stride=2), (2, 3, 11)),
    (nn.LPPool2d, (1.5, 2), dict(ceil_mode=True), (2, 3, 9, 7)),
    (nn.LPPool3d, (4, 2), {}, (1, 2, 5, 4, 4)),
    (nn.FractionalMaxPool2d, (2,), dict(output_ratio=(0.5, 0.7), return_indices=True,
                                        _random_samples=torch.rand(2, 3, 2).double()),
     (2, 3, 9, 7)),
    (nn.FractionalMaxPool3d, (2,), dict(output_size=3,
                                        _random_samples=torch.rand(1, 2, 3).double()),
     (1, 2, 5, 6, 5)),
]


@pytest.mark.parametrize("cls,args,kwargs,shape", TWIN_CASES, ids=lambda v: getattr(v, "__name__",
                                                                                    None))
def test_twin_is_torchs_module_computed_by_poolkit(cls, args, kwargs, shape):
    twin = getattr(pt.nn, cls.__name__)
    assert pt.nn.TWINS[cls] is twin and twin.__name__ == cls.__name__
    ours, ref = twin(*args, **kwargs), cls(*args, **kwargs)
    assert repr(ours) == repr(ref) and vars(ours) == vars(ref)
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64).abs()  # LP: poolkit equals torch for x >= 0
    a, b = ours(x), ref(x)
    for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,),
                    strict=True):
        torch.testing.assert_close(u, v, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_unpool_twin_takes_indices_and_output_size(rank):
    x = torch.randn(1, 2, *(6,) * rank)
    y, idx = getattr(torch.nn.functional, f"max_pool{rank}d")(x, 2, return_indices=True)
    cls = getattr(nn, f"MaxUnpool{rank}d")
    ours, ref = getattr(pt.nn, cls.__name__)(2), cls(2)
    assert repr(ours) == repr(ref)
    size = (7,) * rank
    assert torch.equal(ours(y, idx, output_size=size), ref(y, idx, output_size=size))


OWN = [
    (pt.nn.BlurPool1d, dict(filt_size=3), (2, 3, 9), "blur_pool1d"),
    (pt.nn.BlurPool2d, dict(stride=3, pad_type="zero"), (2, 3, 9, 8), "blur_pool2d"),
    (pt.nn.MaxBlurPool2d, dict(kernel_size=3), (2, 3, 9, 8), "max_blur_pool2d"),
    (pt.nn.MinPool2d, dict(kernel_size=3, stride=2, padding=1), (2, 3, 9, 8), "min_pool2d"),
    (pt.nn.APSPool2d, dict(norm=1), (2, 3, 9, 8), "aps_pool2d"),
]


@pytest.mark.parametrize("cls,kwargs,shape,fn", OWN, ids=lambda v: getattr(v, "__name__", None))
def test_poolkit_modules(cls, kwargs, shape, fn):
    m = cls(**kwargs)
    assert all(getattr(m, k) == v for k, v in kwargs.items())
    assert repr(m).startswith(cls.__name__ + "(") and all(f"{k}=" in repr(m) for k in kwargs)
    x = torch.randn(shape)
    assert torch.equal(m(x), getattr(pt.functional, fn)(x, **kwargs))
    assert m.state_dict() == {} and isinstance(m, nn.Module)


# --------------------------------------------------------------------------------------------
# torch.compile (few and small: each compilation costs seconds).


def _compile_model():
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), pt.nn.MaxPool2d(3, 2, 1), nn.ReLU(),
        pt.nn.AvgPool2d(2, ceil_mode=True), pt.nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(4 * 2 * 2, 3),
    ).double()


def test_compiled_model_equals_eager():
    torch.manual_seed(0)
    model = _compile_model()
    x = torch.randn(2, 2, 11, 11, dtype=torch.float64)
    compiled = torch.compile(model, fullgraph=True)
    y0, g0 = _run(model, x)
    y1, g1 = _run(compiled, x)
    torch.testing.assert_close(y1, y0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g1, g0, rtol=1e-12, atol=1e-12)


def test_compiled_with_dynamic_shapes_runs_the_custom_ops():
    """AOTAutograd with symbolic sizes: one graph serves two input sizes, and it calls poolkit."""
    from torch._dynamo.testing import CompileCounterWithBackend

    torch.manual_seed(0)
    model = nn.Sequential(pt.nn.MaxPool2d(3, 2, 1), pt.nn.AvgPool2d(2)).double()
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(model, backend=counter, dynamic=True, fullgraph=True)
    for size in (12, 17):
        x = torch.randn(1, 2, size, size, dtype=torch.float64)
        y0, g0 = _run(model, x)
        y1, g1 = _run(compiled, x)
        assert torch.equal(y1, y0) and torch.equal(g1, g0)
    assert counter.frame_count == 1
    graph = str(counter.graphs[0].graph)
    assert "poolkit.max_pool2d" in graph and "poolkit.avg_pool2d" in graph
