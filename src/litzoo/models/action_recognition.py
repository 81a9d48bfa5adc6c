"""Video classifiers: I3D by inflating a timm 2D ResNet, torchvision's R3D/MC3/R(2+1)D-18, a small R(2+1)D
for CPUs, and TSN (a 2D backbone averaged over time).

Every network maps an ``N x 3 x T x H x W`` clip batch to ``N x K`` class logits.

- :func:`build_i3d`: a timm ResNet (``resnet50``, ``resnet18``, ``resnet50d``, ...) whose layers are
  replaced in place by their 3D counterparts (Carreira & Zisserman 2017): each ``k x k`` convolution
  becomes ``t x k x k`` with ``t`` = 3 for the first convolution of the blocks the ``inflate``
  pattern marks (GluonCV/MMAction's I3D-ResNet-50: ``[[1,1,1],[1,0,1,0],[1,0,1,0,1,0],[0,1,0]]``,
  the "3x1x1" style), ``stem_time_kernel`` (5) for the stem and 1 elsewhere; 2D weights are repeated
  over ``t`` and divided by ``t``; batch norms, max/avg pools and the global pool become 3D. An
  inflated net on a clip of identical frames therefore computes what the 2D net computes on one
  frame (exactly with ``time_padding="replicate"``; with the usual zero padding, away from the
  clip's first and last frames). ``pretrained`` is a local file of the 2D net's ImageNet weights
  (or ``true``: timm's, from the local cache), loaded before inflating.
- :func:`build_torchvision_video`: ``r3d_18``, ``mc3_18``, ``r2plus1d_18`` (Tran et al. 2018) from
  ``torchvision.models.video``.
- :func:`build_small_r2plus1d`: the same (2+1)D blocks at small widths, the CPU default.
- :func:`build_tsn`: Temporal Segment Networks (Wang et al. 2016): any timm classifier on each
  frame/segment, logits averaged ("average consensus").

``weights_path`` is a local file of the whole network's weights (a torchvision Kinetics-400 file, an
MMAction2 I3D checkpoint, whose names are converted, or the ``state_dict`` of a litzoo checkpoint):
fine-tuning from Kinetics. Tensors whose shapes differ
(the classifier for another number of classes) keep their fresh initialisation. Nothing downloads.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from litzoo.errors import ConfigError

log = logging.getLogger("litzoo")

I3D_RESNET50_INFLATE = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))
TIME_PADDING = ("zeros", "replicate")
TORCHVISION_VIDEO = ("r3d_18", "mc3_18", "r2plus1d_18")


def load_whole_network(net: nn.Module, weights_path: str | os.PathLike | None, what: str) -> None:
    """Load a local state dict of the whole network (``net.`` prefixes of litzoo checkpoints stripped)."""
    if not weights_path:
        return
    from litzoo.models.detection import load_matching, load_state_dict_file

    state = load_state_dict_file(weights_path, what)
    for prefix in ("net.", "module."):
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state) and any(k.startswith("cls_head.") for k in state):
        state = from_mmaction_names(state)
    load_matching(net, state, what)


# MMAction2's ResNet3d wraps each convolution and its batch norm in a ConvModule (``<name>.conv``,
# ``<name>.bn``) under ``backbone.``, and names the classifier ``cls_head.fc_cls``; timm names them
# ``conv<k>`` / ``bn<k>``, ``downsample.0`` / ``downsample.1`` and ``fc``.
_MMACTION_RENAMES = (
    (re.compile(r"^conv1\.conv\."), "conv1."),
    (re.compile(r"^conv1\.bn\."), "bn1."),
    (re.compile(r"^(layer\d+\.\d+)\.conv(\d)\.conv\."), r"\1.conv\2."),
    (re.compile(r"^(layer\d+\.\d+)\.conv(\d)\.bn\."), r"\1.bn\2."),
    (re.compile(r"^(layer\d+\.\d+)\.downsample\.conv\."), r"\1.downsample.0."),
    (re.compile(r"^(layer\d+\.\d+)\.downsample\.bn\."), r"\1.downsample.1."),
)


def from_mmaction_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An MMAction2 I3D / ResNet3d checkpoint's tensors under the inflated timm ResNet's names (Kinetics
    weights for fine-tuning: ``model.weights_path=i3d_r50_..._kinetics400-rgb.pth``); other keys unchanged."""
    renamed = {}
    for key, value in state.items():
        if key.startswith("cls_head.fc_cls."):
            key = "fc." + key[len("cls_head.fc_cls.") :]
        elif key.startswith("backbone."):
            key = key[len("backbone.") :]
            for pattern, replacement in _MMACTION_RENAMES:
                key = pattern.sub(replacement, key)
        renamed[key] = value
    return renamed


# --------------------------------------------------------------------------- inflation


class InflatedConv3d(nn.Conv3d):
    """A ``t x k x k`` convolution inflated from a 2D one; ``time_padding="replicate"`` pads time by repeating
    the first and last frames (spatial padding stays zeros), so a static clip stays static."""

    def __init__(self, *args: Any, time_padding: str = "zeros", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.time_padding = time_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_t = self.padding[0]
        if self.time_padding == "replicate" and pad_t:
            x = F.pad(x, (0, 0, 0, 0, pad_t, pad_t), mode="replicate")
            return F.conv3d(
                x, self.weight, self.bias, self.stride, (0, *self.padding[1:]), self.dilation, self.groups
            )
        return super().forward(x)


class GlobalAvgPool3d(nn.Module):
    """Average over time and space, flattened: the 3D counterpart of timm's global pool."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3, 4))


def inflate_conv(
    conv: nn.Conv2d, time_kernel: int, time_stride: int = 1, time_padding: str = "zeros"
) -> InflatedConv3d:
    """The 3D convolution whose weights are the 2D ones repeated `time_kernel` times, divided by it."""
    out = InflatedConv3d(
        conv.in_channels,
        conv.out_channels,
        kernel_size=(time_kernel, *conv.kernel_size),
        stride=(time_stride, *conv.stride),
        padding=(time_kernel // 2, *conv.padding),
        dilation=(1, *conv.dilation),
        groups=conv.groups,
        bias=conv.bias is not None,
        time_padding=time_padding,
    )
    with torch.no_grad():
        out.weight.copy_(conv.weight.unsqueeze(2).repeat(1, 1, time_kernel, 1, 1) / time_kernel)
        if conv.bias is not None:
            out.bias.copy_(conv.bias)
    return out


def inflate_batch_norm(norm: nn.BatchNorm2d) -> nn.BatchNorm3d:
    out = nn.BatchNorm3d(norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats)
    out.load_state_dict(norm.state_dict())
    return out


def _pool3d(pool: nn.Module, time_stride: int = 1) -> nn.Module:
    def pair(v: Any) -> tuple[int, int]:
        return (v, v) if isinstance(v, int) else tuple(v)

    kernel, stride, padding = (
        pair(pool.kernel_size),
        pair(pool.stride or pool.kernel_size),
        pair(pool.padding),
    )
    if isinstance(pool, nn.MaxPool2d):
        return nn.MaxPool3d(
            (1, *kernel),
            (time_stride, *stride),
            (0, *padding),
            dilation=(1, *pair(pool.dilation)),
            ceil_mode=pool.ceil_mode,
        )
    return nn.AvgPool3d(
        (1, *kernel),
        (time_stride, *stride),
        (0, *padding),
        ceil_mode=pool.ceil_mode,
        count_include_pad=pool.count_include_pad,
    )


def _block_pattern(inflate: Sequence[Any] | None, depths: Sequence[int]) -> list[list[int]]:
    """One 0/1 per block of each stage; an int for a stage applies to all its blocks; None inflates every block."""
    if inflate is None:
        return [[1] * d for d in depths]
    if len(inflate) != len(depths):
        raise ConfigError(
            f"model.inflate has {len(inflate)} stages, the backbone {len(depths)} ({list(depths)} blocks); give one "
            "list of 0/1 (or one 0/1) per stage."
        )
    pattern = []
    for stage, (marks, depth) in enumerate(zip(inflate, depths), start=1):
        marks = [int(marks)] * depth if isinstance(marks, int) else [int(m) for m in marks]
        if len(marks) != depth:
            raise ConfigError(
                f"model.inflate stage {stage} has {len(marks)} marks for {depth} blocks; give one 0/1 per block."
            )
        pattern.append(marks)
    return pattern


def inflate_resnet(
    net: nn.Module,
    inflate: Sequence[Any] | None = None,
    stem_time_kernel: int = 5,
    stem_time_stride: int = 1,
    pool_time_stride: int = 1,
    time_padding: str = "zeros",
) -> nn.Module:
    """Turn a timm ResNet into its 3D counterpart in place (see the module docstring); returns it."""
    if time_padding not in TIME_PADDING:
        raise ConfigError(f"model.time_padding={time_padding!r}: use one of {', '.join(TIME_PADDING)}.")
    stages = [getattr(net, f"layer{i}", None) for i in range(1, 5)]
    if any(s is None for s in stages) or not hasattr(net, "conv1"):
        raise ConfigError(
            f"I3D inflates timm ResNets (conv1, layer1-4); {type(net).__name__} is not one. Use model.arch=resnet50, "
            "resnet18, resnet50d, ..."
        )
    pattern = _block_pattern(inflate, [len(s) for s in stages])
    kernels: dict[str, tuple[int, int]] = {}  # conv name -> (time kernel, time stride)
    stem = net.conv1
    stem_convs = (
        [n for n, m in stem.named_modules() if isinstance(m, nn.Conv2d)]
        if not isinstance(stem, nn.Conv2d)
        else [""]
    )
    kernels["conv1" + (f".{stem_convs[0]}" if stem_convs[0] else "")] = (
        int(stem_time_kernel),
        int(stem_time_stride),
    )
    for stage, marks in enumerate(pattern, start=1):
        for block, mark in enumerate(marks):
            if mark:
                kernels[f"layer{stage}.{block}.conv1"] = (3, 1)
    replacements: list[tuple[str, nn.Module]] = []
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            time_kernel, time_stride = kernels.get(name, (1, 1))
            replacements.append((name, inflate_conv(module, time_kernel, time_stride, time_padding)))
        elif isinstance(module, nn.BatchNorm2d):
            replacements.append((name, inflate_batch_norm(module)))
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            replacements.append((name, _pool3d(module, int(pool_time_stride) if name == "maxpool" else 1)))
        elif type(module).__name__ == "SelectAdaptivePool2d":
            replacements.append((name, GlobalAvgPool3d()))
        elif isinstance(module, (nn.GroupNorm, nn.LayerNorm)) or type(module).__name__.startswith(
            ("BlurPool", "Std")
        ):
            raise ConfigError(
                f"I3D cannot inflate {type(module).__name__} ({name}); pick a plain timm ResNet."
            )
    for name, replacement in replacements:
        parent_name, _, child = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, child, replacement)
    return net


def build_i3d(
    num_classes: int,
    arch: str = "resnet50",
    pretrained: str | bool | None = None,
    allow_download: bool = False,
    weights_path: str | os.PathLike | None = None,
    inflate: Sequence[Any] | None = I3D_RESNET50_INFLATE,
    stem_time_kernel: int = 5,
    stem_time_stride: int = 1,
    pool_time_stride: int = 1,
    time_padding: str = "zeros",
    dropout: float = 0.5,
    **kwargs: Any,
) -> nn.Module:
    """I3D from timm ResNet `arch` (2D ImageNet weights from `pretrained` inflated, or Kinetics weights from
    `weights_path`); `dropout` before the classifier (I3D's 0.5)."""
    from litzoo.models.classification import create_classifier

    net = create_classifier(
        arch,
        num_classes,
        pretrained=pretrained,
        allow_download=allow_download,
        drop_rate=float(dropout),
        **kwargs,
    )
    inflate_resnet(net, inflate, stem_time_kernel, stem_time_stride, pool_time_stride, time_padding)
    load_whole_network(net, weights_path, "model.weights_path (I3D weights)")
    return net


# --------------------------------------------------------------------------- torchvision video ResNets


def build_torchvision_video(
    arch: str, num_classes: int, weights_path: str | os.PathLike | None = None, dropout: float = 0.0
) -> nn.Module:
    """torchvision's ``r3d_18``, ``mc3_18`` or ``r2plus1d_18``; `weights_path`: e.g. its Kinetics-400 file."""
    from torchvision.models import video

    if arch not in TORCHVISION_VIDEO:
        raise ConfigError(
            f"model.arch={arch!r}: torchvision's video ResNets are {', '.join(TORCHVISION_VIDEO)}."
        )
    net = getattr(video, arch)(weights=None, num_classes=num_classes)
    load_whole_network(net, weights_path, f"model.weights_path ({arch} weights)")
    if dropout:
        net.fc = nn.Sequential(nn.Dropout(float(dropout)), net.fc)
    return net


class SmallVideoResNet(nn.Module):
    """torchvision's video ResNet design (BasicBlocks of (2+1)D or 3D convolutions) at chosen widths."""

    def __init__(
        self,
        num_classes: int,
        block: str = "r2plus1d",
        widths: Sequence[int] = (16, 32, 64, 128),
        layers: Sequence[int] = (1, 1, 1, 1),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D, Conv3DSimple

        if block not in ("r2plus1d", "r3d"):
            raise ConfigError(
                f"model.block={block!r}: use r2plus1d ((2+1)D convolutions) or r3d (3D convolutions)."
            )
        if len(widths) != 4 or len(layers) != 4:
            raise ConfigError("model.widths and model.layers need four values (one per stage).")
        builder = Conv2Plus1D if block == "r2plus1d" else Conv3DSimple
        first = int(widths[0])
        if (
            block == "r2plus1d"
        ):  # torchvision's R2Plus1dStem: a spatial 1x7x7 then a temporal 3x1x1 convolution
            self.stem = nn.Sequential(
                nn.Conv3d(3, first, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
                nn.BatchNorm3d(first),
                nn.ReLU(inplace=True),
                nn.Conv3d(first, first, (3, 1, 1), 1, (1, 0, 0), bias=False),
                nn.BatchNorm3d(first),
                nn.ReLU(inplace=True),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv3d(3, first, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                nn.BatchNorm3d(first),
                nn.ReLU(inplace=True),
            )
        stages, inplanes = [], first
        for index, (width, count) in enumerate(zip(widths, layers)):
            stride = 1 if index == 0 else 2
            blocks = []
            for number in range(int(count)):
                s = stride if number == 0 else 1
                downsample = None
                if s != 1 or inplanes != width:
                    ds = builder.get_downsample_stride(s)
                    downsample = nn.Sequential(
                        nn.Conv3d(inplanes, int(width), 1, stride=ds, bias=False), nn.BatchNorm3d(int(width))
                    )
                blocks.append(BasicBlock(inplanes, int(width), builder, s, downsample))
                inplanes = int(width)
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.dropout = nn.Dropout(float(dropout))
        self.fc = nn.Linear(inplanes, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(self.dropout(x.mean(dim=(2, 3, 4))))


def build_small_r2plus1d(
    num_classes: int,
    block: str = "r2plus1d",
    widths: Sequence[int] = (16, 32, 64, 128),
    layers: Sequence[int] = (1, 1, 1, 1),
    dropout: float = 0.0,
    weights_path: str | os.PathLike | None = None,
) -> nn.Module:
    net = SmallVideoResNet(num_classes, block, widths, layers, dropout)
    load_whole_network(net, weights_path, "model.weights_path")
    return net


# --------------------------------------------------------------------------- TSN


class TSN(nn.Module):
    """A 2D classifier applied to every frame (segment) of the clip, its logits averaged over time."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, time = x.shape[:3]
        frames = x.transpose(1, 2).reshape(batch * time, channels, *x.shape[3:])
        return self.backbone(frames).view(batch, time, -1).mean(dim=1)


def build_tsn(
    num_classes: int,
    arch: str = "resnet50",
    pretrained: str | bool | None = None,
    allow_download: bool = False,
    weights_path: str | os.PathLike | None = None,
    dropout: float = 0.5,
    **kwargs: Any,
) -> nn.Module:
    from litzoo.models.classification import create_classifier

    backbone = create_classifier(
        arch,
        num_classes,
        pretrained=pretrained,
        allow_download=allow_download,
        drop_rate=float(dropout),
        **kwargs,
    )
    net = TSN(backbone)
    load_whole_network(net, weights_path, "model.weights_path (TSN weights)")
    return net
