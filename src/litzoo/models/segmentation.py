"""Semantic-segmentation networks: torchvision's FCN / DeepLabV3 / LR-ASPP, and timm encoders with a light decoder.

Every network maps an ``N x 3 x H x W`` batch to a dict: ``"out"``, the ``N x K x H x W`` class
logits at the input's resolution, and, with the auxiliary head, ``"aux"`` (same shape; used by
the training loss only), the convention of ``torchvision.models.segmentation``.

- :func:`build_torchvision_segmenter`: ``head`` ``fcn`` / ``deeplabv3`` / ``psp`` on ResNet-50/101 or
  MobileNetV3-Large, ``lraspp`` on MobileNetV3-Large, built from torchvision's own modules so that
  the output stride can be chosen: 8 (dilated layer3 + layer4, the paper setting), 16 or 32 for
  ResNets; 16 or 32 for MobileNetV3. DeepLabV3's atrous rates follow the stride (12/24/36 at 8,
  6/12/18 at 16). The auxiliary FCN head sits on ResNet's layer3 (MobileNetV3: its stride-8 block).
  ``psp`` is PSPNet's pyramid pooling head (Zhao et al. 2017; :class:`PSPHead`), which torchvision
  does not ship, over the same dilated backbones.
- :func:`build_timm_segmenter`: any timm model that supports ``features_only`` (resnet18,
  convnext_tiny, efficientnet_b0, ...) as encoder, its last four feature levels decoded by a
  semantic FPN (``decoder="fpn"``) or DeepLabV3+'s decoder (ASPP on the deepest level, fused with
  the stride-4 level; ``decoder="deeplabv3plus"``).

Nothing is downloaded: ``pretrained`` is a local file of backbone weights (a torchvision or timm
ImageNet state dict; a checkpoint dict holding one under ``state_dict``/``model`` works too), and
``weights_path`` a local file of the whole network's weights (e.g. torchvision's COCO-VOC
segmentation weights, or the ``state_dict`` of a litzoo checkpoint); tensors whose shapes differ,
such as a classifier for another number of classes, keep their fresh initialisation.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenet_v3_large
from torchvision.models import resnet as torchvision_resnets
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation._utils import _SimpleSegmentationModel
from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabHead, DeepLabV3
from torchvision.models.segmentation.fcn import FCN, FCNHead
from torchvision.models.segmentation.lraspp import LRASPP

from litzoo.errors import ConfigError, DependencyError

HEADS = ("fcn", "deeplabv3", "psp", "lraspp")
RESNETS = ("resnet50", "resnet101", "resnet152")
BACKBONES = (*RESNETS, "mobilenet_v3_large")
DECODERS = ("fpn", "deeplabv3plus")
# DeepLabV3's ASPP rates scale with the output stride (Chen et al. 2017: 6/12/18 at 16, doubled at 8).
ASPP_RATES = {8: (12, 24, 36), 16: (6, 12, 18), 32: (3, 6, 9)}
# ResNet layer2/3/4 stride replaced by dilation, per output stride.
RESNET_DILATION = {8: [False, True, True], 16: [False, False, True], 32: [False, False, False]}


# --------------------------------------------------------------------------- weights


def _load_weights(
    module: nn.Module, path: str | os.PathLike, what: str, prefixes: Sequence[str] = ()
) -> None:
    from litzoo.models.detection import load_matching, load_state_dict_file

    state = load_state_dict_file(path, what)
    for prefix in prefixes:  # e.g. a litzoo checkpoint's "net." or a segmentation model's "backbone."
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}
    load_matching(module, state, what)


# --------------------------------------------------------------------------- torchvision


def build_torchvision_segmenter(
    head: str,
    num_classes: int,
    backbone: str = "resnet50",
    aux_loss: bool = True,
    output_stride: int = 8,
    pretrained: str | os.PathLike | None = None,
    weights_path: str | os.PathLike | None = None,
    bn_momentum: float | None = None,
) -> nn.Module:
    """torchvision's FCN, DeepLabV3 or LR-ASPP with a chosen backbone and output stride (see the module
    docstring); ``bn_momentum`` (if given) replaces every batch norm's running-statistics momentum."""
    _check_torchvision(head, backbone, output_stride, aux_loss)
    if backbone in RESNETS:
        model = _resnet_segmenter(head, backbone, num_classes, aux_loss, output_stride, pretrained)
    else:
        model = _mobilenet_segmenter(head, num_classes, aux_loss, output_stride, pretrained)
    if weights_path is not None:
        _load_weights(model, weights_path, f"{head}_{backbone} weights", prefixes=("net.", "model."))
    return set_bn_momentum(model, bn_momentum)


def set_bn_momentum(model: nn.Module, momentum: float | None) -> nn.Module:
    """Set the running-statistics momentum of every batch norm (``None`` keeps each library's own).

    torchvision's MobileNetV3 uses 0.01: its running statistics trail the training statistics by
    hundreds of steps, so a model trained from scratch for a few epochs evaluates as if untrained
    (everything predicted as the majority class) long after it has learnt. PyTorch's default and
    MMSegmentation's, 0.1, follows within tens of steps.
    """
    if momentum is not None:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = float(momentum)
    return model


def _check_torchvision(head: str, backbone: str, output_stride: int, aux_loss: bool) -> None:
    if head not in HEADS:
        raise ConfigError(
            f"model.head={head!r} is not a torchvision segmentation head; use one of {', '.join(HEADS)}."
        )
    if backbone not in BACKBONES:
        raise ConfigError(
            f"model.backbone={backbone!r} is not supported; use one of {', '.join(BACKBONES)}, or "
            "model=fpn_timm / deeplabv3plus_timm for any timm encoder."
        )
    if head == "lraspp" and backbone != "mobilenet_v3_large":
        raise ConfigError(
            "LR-ASPP is MobileNetV3's head: use model.backbone=mobilenet_v3_large with head=lraspp."
        )
    if head == "lraspp" and aux_loss:
        raise ConfigError("LR-ASPP has no auxiliary head: set model.aux_loss=false.")
    strides = (8, 16, 32) if backbone in RESNETS else (16, 32)
    if output_stride not in strides:
        raise ConfigError(
            f"model.output_stride={output_stride} is not available for {backbone}; use one of "
            f"{', '.join(str(s) for s in strides)}."
        )


def _resnet_segmenter(
    head: str,
    backbone: str,
    num_classes: int,
    aux_loss: bool,
    output_stride: int,
    pretrained: str | os.PathLike | None,
) -> nn.Module:
    body = getattr(torchvision_resnets, backbone)(
        weights=None, replace_stride_with_dilation=RESNET_DILATION[output_stride]
    )
    if pretrained is not None:
        _load_weights(body, pretrained, f"pretrained {backbone} backbone", prefixes=("backbone.",))
    layers = {"layer4": "out", **({"layer3": "aux"} if aux_loss else {})}
    features = IntermediateLayerGetter(body, return_layers=layers)
    aux = FCNHead(1024, num_classes) if aux_loss else None
    return _assemble(head, features, 2048, num_classes, aux, output_stride)


def _mobilenet_segmenter(
    head: str, num_classes: int, aux_loss: bool, output_stride: int, pretrained: str | os.PathLike | None
) -> nn.Module:
    network = mobilenet_v3_large(weights=None, dilated=output_stride == 16)
    if pretrained is not None:
        _load_weights(network, pretrained, "pretrained mobilenet_v3_large backbone", prefixes=("backbone.",))
    blocks = network.features
    # As torchvision: C5 (the last block) is the deep feature, C2 (stride 8) the shallow one.
    stages = [0] + [i for i, b in enumerate(blocks) if getattr(b, "_is_cn", False)] + [len(blocks) - 1]
    deep, shallow = stages[-1], stages[-4]
    deep_channels, shallow_channels = blocks[deep].out_channels, blocks[shallow].out_channels
    if head == "lraspp":
        features = IntermediateLayerGetter(blocks, return_layers={str(shallow): "low", str(deep): "high"})
        return LRASPP(features, shallow_channels, deep_channels, num_classes)
    layers = {str(deep): "out", **({str(shallow): "aux"} if aux_loss else {})}
    features = IntermediateLayerGetter(blocks, return_layers=layers)
    aux = FCNHead(shallow_channels, num_classes) if aux_loss else None
    return _assemble(head, features, deep_channels, num_classes, aux, output_stride)


def _assemble(
    head: str,
    features: nn.Module,
    channels: int,
    num_classes: int,
    aux: nn.Module | None,
    output_stride: int,
) -> nn.Module:
    """The backbone's ``"out"`` features (`channels` deep) under the chosen head, plus the auxiliary head."""
    if head == "fcn":
        return FCN(features, FCNHead(channels, num_classes), aux)
    if head == "psp":
        return PSPNet(features, PSPHead(channels, num_classes), aux)
    return DeepLabV3(features, DeepLabHead(channels, num_classes, ASPP_RATES[output_stride]), aux)


class PSPHead(nn.Sequential):
    """PSPNet's head (Zhao et al. 2017; MMSegmentation's ``PSPHead``): the pyramid pooling module, a 3x3
    bottleneck over the features and their pooled contexts, dropout 0.1 and a 1x1 classifier.

    The pyramid pooling module averages the features over ``bins x bins`` grids (1, 2, 3, 6), maps
    each pooled grid to ``channels`` (512) with a 1x1 conv-BN-ReLU, upsamples it back bilinearly and
    concatenates all four with the features: for ResNet's 2048 channels this is the paper's 1/4 per
    branch, and it is MMSegmentation's ``channels=512`` for every backbone.
    """

    def __init__(
        self, in_channels: int, num_classes: int, bins: Sequence[int] = (1, 2, 3, 6), channels: int = 512
    ) -> None:
        super().__init__(
            PyramidPooling(in_channels, bins, channels),
            _conv_bn_relu(in_channels + len(bins) * channels, channels, 3),
            nn.Dropout(0.1),
            nn.Conv2d(channels, num_classes, 1),
        )


class PyramidPooling(nn.Module):
    """The input and, per bin size, its ``bin x bin`` average pool through 1x1 conv-BN-ReLU, upsampled back."""

    def __init__(self, in_channels: int, bins: Sequence[int], channels: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(int(b)), _conv_bn_relu(in_channels, channels, 1)) for b in bins
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [
            F.interpolate(branch(x), size=size, mode="bilinear", align_corners=False)
            for branch in self.branches
        ]
        return torch.cat([x, *pooled], dim=1)


class PSPNet(_SimpleSegmentationModel):
    """PSPNet: a dilated backbone, :class:`PSPHead`, an optional auxiliary FCN head (torchvision's wrapper)."""


# --------------------------------------------------------------------------- timm encoder + decoder


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class FPNDecoder(nn.Module):
    """Semantic FPN (Kirillov et al. 2019, light): laterals, top-down sum, every level to the finest, fused."""

    def __init__(self, in_channels: Sequence[int], channels: int = 128) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = nn.ModuleList(_conv_bn_relu(channels, channels, 3) for _ in in_channels)
        self.fuse = _conv_bn_relu(channels, channels, 3)
        self.out_channels = channels

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        levels = [lateral(f) for lateral, f in zip(self.lateral, features)]
        for i in range(len(levels) - 1, 0, -1):
            levels[i - 1] = levels[i - 1] + F.interpolate(
                levels[i], size=levels[i - 1].shape[-2:], mode="bilinear", align_corners=False
            )
        size = levels[0].shape[-2:]
        fused = sum(
            F.interpolate(smooth(level), size=size, mode="bilinear", align_corners=False)
            for smooth, level in zip(self.smooth, levels)
        )
        return self.fuse(fused)


class DeepLabV3PlusDecoder(nn.Module):
    """DeepLabV3+ (Chen et al. 2018): ASPP on the deepest level, upsampled and fused with the shallow one."""

    def __init__(
        self,
        shallow_channels: int,
        deep_channels: int,
        channels: int = 256,
        rates: Sequence[int] = ASPP_RATES[16],
    ) -> None:
        super().__init__()
        self.aspp = ASPP(deep_channels, rates, channels)
        self.shallow = _conv_bn_relu(shallow_channels, 48, 1)
        self.fuse = nn.Sequential(
            _conv_bn_relu(channels + 48, channels, 3), _conv_bn_relu(channels, channels, 3)
        )
        self.out_channels = channels

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        shallow, deep = features[0], features[-1]
        context = F.interpolate(
            self.aspp(deep), size=shallow.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.fuse(torch.cat([context, self.shallow(shallow)], dim=1))


class TimmSegmenter(nn.Module):
    """A timm ``features_only`` encoder, a decoder over its last four levels, a 1x1 classifier."""

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, num_classes: int, aux_channels: int | None
    ) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.classifier = nn.Conv2d(decoder.out_channels, num_classes, 1)
        self.aux_classifier = FCNHead(aux_channels, num_classes) if aux_channels else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        features = self.encoder(x)[-4:]
        result = OrderedDict()
        logits = self.classifier(self.decoder(features))
        result["out"] = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        if self.aux_classifier is not None:
            aux = self.aux_classifier(features[-2])
            result["aux"] = F.interpolate(aux, size=size, mode="bilinear", align_corners=False)
        return result


def build_timm_segmenter(
    num_classes: int,
    backbone: str = "resnet18",
    decoder: str = "fpn",
    output_stride: int = 32,
    decoder_channels: int = 128,
    aux_loss: bool = False,
    pretrained: str | os.PathLike | None = None,
    weights_path: str | os.PathLike | None = None,
    bn_momentum: float | None = None,
) -> nn.Module:
    """A timm encoder (`backbone`) with a semantic-FPN or DeepLabV3+ decoder (see the module docstring);
    ``bn_momentum`` as in :func:`set_bn_momentum`."""
    import timm  # deferred: torchvision-only models need not pay for importing timm

    if decoder not in DECODERS:
        raise ConfigError(f"model.decoder={decoder!r} is not known; use one of {', '.join(DECODERS)}.")
    if output_stride not in ASPP_RATES:
        raise ConfigError(f"model.output_stride={output_stride} must be one of 8, 16, 32.")
    kwargs: dict[str, Any] = {"features_only": True}
    if output_stride != 32:
        kwargs["output_stride"] = output_stride
    if pretrained is not None:
        path = os.fspath(pretrained)
        if not os.path.isfile(path):
            raise DependencyError(
                f"model.pretrained={path} does not exist. Weights are never downloaded: give a local timm or "
                f"torchvision state-dict file for '{backbone}', or model.pretrained=null to train from scratch."
            )
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": path})
    try:
        encoder = timm.create_model(backbone, **kwargs)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ConfigError(
            f"timm cannot build '{backbone}' as a feature extractor with output stride "
            f"{output_stride} ({str(error).splitlines()[0]})."
        ) from None
    channels = list(encoder.feature_info.channels())[-4:]
    if decoder == "fpn":
        head: nn.Module = FPNDecoder(channels, decoder_channels)
    else:
        head = DeepLabV3PlusDecoder(channels[0], channels[-1], decoder_channels, ASPP_RATES[output_stride])
    model = TimmSegmenter(encoder, head, num_classes, channels[-2] if aux_loss else None)
    if weights_path is not None:
        _load_weights(model, weights_path, f"{decoder}_{backbone} weights", prefixes=("net.", "model."))
    return set_bn_momentum(model, bn_momentum)
