"""Every segmentation model family builds on CPU, honours its output stride and loads local weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import CONFIG_DIR
from omegaconf import OmegaConf

from litzoo.errors import ConfigError
from litzoo.models.segmentation import build_timm_segmenter, build_torchvision_segmenter
from litzoo.platform.registry import build

MODEL_CONFIGS = [
    "fcn_resnet50",
    "fcn_resnet101",
    "deeplabv3_resnet50",
    "deeplabv3_resnet101",
    "pspnet_resnet50",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
    "fpn_timm",
    "deeplabv3plus_timm",
]
SLOW = {"fcn_resnet101", "deeplabv3_resnet101"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in MODEL_CONFIGS]
)
def test_each_model_config_builds_and_predicts_logits_at_the_input_size(name):
    entry = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml")
    torch.manual_seed(0)
    model = build(entry, num_classes=5)
    outputs = model(torch.randn(2, 3, 40, 56))
    assert outputs["out"].shape == (2, 5, 40, 56)
    assert ("aux" in outputs) == bool(entry.aux_loss)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    # MobileNetV3's configs replace torchvision's 0.01 running-statistics momentum by 0.1.
    assert {m.momentum for m in norms} == {0.1}
    if "aux" in outputs:
        assert outputs["aux"].shape == (2, 5, 40, 56)
    outputs["out"].mean().backward()
    first_conv = next(p for p in model.parameters() if p.ndim == 4)
    assert first_conv.grad is not None and bool(first_conv.grad.abs().sum() > 0)  # gradients reach the stem


@pytest.mark.parametrize(
    ("backbone", "stride", "expected"),
    [("resnet50", 8, 8), ("resnet50", 16, 4), ("mobilenet_v3_large", 16, 4), ("mobilenet_v3_large", 32, 2)],
)
def test_the_output_stride_sets_the_resolution_of_the_deep_features(backbone, stride, expected):
    model = build_torchvision_segmenter("deeplabv3", 3, backbone=backbone, output_stride=stride).eval()
    with torch.no_grad():
        features = model.backbone(torch.randn(1, 3, 64, 64))
    assert features["out"].shape[-1] == expected  # 64 / output stride
    assert [m[0].dilation[0] for m in model.classifier[0].convs[1:4]] == (
        [12, 24, 36] if stride == 8 else [6, 12, 18] if stride == 16 else [3, 6, 9]
    )


def test_pspnet_pools_the_stride_8_features_over_1_2_3_6_grids_and_sees_the_whole_image():
    from litzoo.models.segmentation import PSPHead, PyramidPooling

    torch.manual_seed(0)
    model = build_torchvision_segmenter("psp", 4, backbone="resnet50", output_stride=8).eval()
    assert isinstance(model.classifier, PSPHead) and model.aux_classifier[0].in_channels == 1024  # on layer3
    assert model.classifier[1][0].in_channels == 2048 + 4 * 512  # features + four 512-channel contexts
    pooled = []
    pools = [m for m in model.classifier[0].modules() if isinstance(m, torch.nn.AdaptiveAvgPool2d)]
    hooks = [m.register_forward_hook(lambda m, i, o: pooled.append(tuple(o.shape[-2:]))) for m in pools]
    with torch.no_grad():
        features = model.backbone(torch.randn(1, 3, 96, 96))
        model.classifier(features["out"])
    for hook in hooks:
        hook.remove()
    assert features["out"].shape[-2:] == (12, 12) and features["aux"].shape[-2:] == (12, 12)  # stride 8
    assert pooled == [(1, 1), (2, 2), (3, 3), (6, 6)]
    # The pyramid's global branches carry a change in one corner of the features to the opposite
    # corner; the 3x3 bottleneck alone (no pooling) does not.
    head = PSPHead(8, 3, channels=4).eval()
    x = torch.randn(1, 8, 12, 12)
    changed = x.clone()
    changed[..., :2, :2] += 5
    with torch.no_grad():
        assert not torch.allclose(head(x)[..., -1, -1], head(changed)[..., -1, -1])
        assert isinstance(head[0], PyramidPooling)
        local = torch.nn.Sequential(*list(head)[1:])
        context = head[0](x)[:, 8:]  # the pooled contexts, held fixed
        assert torch.allclose(
            local(torch.cat([x, context], 1))[..., -1, -1],
            local(torch.cat([changed, context], 1))[..., -1, -1],
        )


def test_timm_encoders_dilate_for_a_smaller_output_stride():
    model = build_timm_segmenter(3, "resnet18", "deeplabv3plus", output_stride=8).eval()
    with torch.no_grad():
        features = model.encoder(torch.randn(1, 3, 64, 64))
    assert features[-1].shape[-1] == 8


def test_pretrained_backbone_weights_load_from_a_local_file(tmp_path: Path):
    import timm
    import torchvision

    torch.manual_seed(1)
    resnet = torchvision.models.resnet50()
    torch.save(resnet.state_dict(), tmp_path / "resnet50.pth")
    model = build_torchvision_segmenter("fcn", 4, backbone="resnet50", pretrained=tmp_path / "resnet50.pth")
    assert torch.equal(model.backbone.conv1.weight, resnet.conv1.weight)
    assert torch.equal(model.backbone.layer4[0].conv2.weight, resnet.layer4[0].conv2.weight)

    encoder = timm.create_model("resnet18")
    torch.save(encoder.state_dict(), tmp_path / "resnet18.pth")
    timm_model = build_timm_segmenter(4, "resnet18", pretrained=tmp_path / "resnet18.pth")
    assert torch.equal(timm_model.encoder.conv1.weight, encoder.conv1.weight)


def test_whole_network_weights_for_another_class_count_keep_all_but_the_classifier(tmp_path: Path):
    torch.manual_seed(2)
    source = build_torchvision_segmenter(
        "lraspp", 21, backbone="mobilenet_v3_large", aux_loss=False, output_stride=16
    )
    torch.save({"state_dict": {f"net.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "run.ckpt")
    model = build_torchvision_segmenter(
        "lraspp",
        3,
        backbone="mobilenet_v3_large",
        aux_loss=False,
        output_stride=16,
        weights_path=tmp_path / "run.ckpt",
    )
    assert torch.equal(model.backbone["0"][0].weight, source.backbone["0"][0].weight)
    assert model.classifier.low_classifier.weight.shape[0] == 3  # fresh: 3 classes, not 21


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"head": "lraspp", "backbone": "resnet50", "aux_loss": False}, "LR-ASPP is MobileNetV3's head"),
        ({"head": "deeplabv3", "backbone": "mobilenet_v3_large", "output_stride": 8}, "use one of 16, 32"),
        ({"head": "pspnet"}, "fcn, deeplabv3, psp, lraspp"),
        ({"head": "fcn", "backbone": "resnet18"}, "resnet50, resnet101"),
    ],
)
def test_impossible_architectures_are_refused_with_the_options(arguments, message):
    with pytest.raises(ConfigError, match=message):
        build_torchvision_segmenter(num_classes=3, **arguments)


def test_a_missing_pretrained_file_names_it_and_never_downloads(tmp_path: Path):
    from litzoo.errors import DependencyError

    with pytest.raises(DependencyError, match="never downloaded"):
        build_torchvision_segmenter("fcn", 3, pretrained=tmp_path / "missing.pth")
    with pytest.raises(DependencyError, match="never downloaded"):
        build_timm_segmenter(3, pretrained=tmp_path / "missing.pth")
