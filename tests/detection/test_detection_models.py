"""R-CNN builders: train/eval contracts on tiny images, local weights, frozen stages, bad arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torchvision
from torchvision.ops.misc import FrozenBatchNorm2d

from litzoo.errors import ConfigError, DependencyError
from litzoo.models.detection import (
    TimmFPNBackbone,
    build_faster_rcnn,
    build_keypoint_rcnn,
    build_mask_rcnn,
)

BOX_LOSSES = {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}


def batch(masks: bool = False, keypoints: bool = False) -> tuple[list[torch.Tensor], list[dict]]:
    torch.manual_seed(0)
    images = [torch.rand(3, 96, 128), torch.rand(3, 128, 96)]
    targets = []
    for h, w in ((96, 128), (128, 96)):
        t = {"boxes": torch.tensor([[8.0, 10, 50, 60], [40, 30, 90, 90]]), "labels": torch.tensor([1, 2])}
        if masks:
            m = torch.zeros(2, h, w, dtype=torch.uint8)
            m[0, 10:60, 8:50] = 1
            m[1, 30:90, 40:90] = 1
            t["masks"] = m
        if keypoints:
            t["keypoints"] = torch.tensor(
                [
                    [[20.0, 12, 2], [9, 30, 2], [48, 30, 1], [20, 58, 2]],
                    [[60.0, 31, 2], [41, 60, 2], [88, 60, 2], [60, 88, 0]],
                ]
            )
        targets.append(t)
    return images, targets


MODELS = {
    "faster_resnet18": (lambda: build_faster_rcnn(3), {}, set()),
    "faster_timm_resnet18": (
        lambda: build_faster_rcnn(3, backbone_source="timm", backbone_name="resnet18"),
        {},
        set(),
    ),
    "faster_mobilenet_v3": (lambda: build_faster_rcnn(3, variant="mobilenet_v3_large_fpn"), {}, set()),
    # Few detections: pasting 100 untrained masks back into the image dominates the test's time.
    "mask_resnet18": (lambda: build_mask_rcnn(3, box_detections_per_img=10), {"masks": True}, {"loss_mask"}),
    "keypoint_resnet18": (
        lambda: build_keypoint_rcnn(num_keypoints=4, num_classes=3),
        {"keypoints": True},
        {"loss_keypoint"},
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_train_and_eval_contract(name: str) -> None:
    build, batch_kwargs, extra_losses = MODELS[name]
    model = build()
    images, targets = batch(**batch_kwargs)
    model.train()
    losses = model(images, targets)
    assert set(losses) == BOX_LOSSES | extra_losses
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(
        p.grad is not None for n, p in model.named_parameters() if p.requires_grad and "roi_heads" in n
    )
    model.eval()
    with torch.no_grad():
        outputs = model(images)
    assert len(outputs) == 2
    for out, image in zip(outputs, images):
        n = len(out["boxes"])
        assert (
            out["boxes"].shape == (n, 4)
            and out["labels"].dtype == torch.int64
            and out["scores"].shape == (n,)
        )
        assert (out["labels"] >= 1).all() and (out["labels"] <= 2).all()
        if "masks" in extra_losses or "loss_mask" in extra_losses:
            assert out["masks"].shape == (n, 1, *image.shape[-2:])  # masks come back at the input size
        if "loss_keypoint" in extra_losses:
            assert out["keypoints"].shape == (n, 4, 3)


@pytest.mark.parametrize("kind", ["faster", "mask", "keypoint", "timm"])
def test_narrow_fpn_and_box_head(kind: str) -> None:
    """litzoo's CPU defaults: every head downstream of the FPN follows its width (the keypoint head too)."""
    narrow = {"fpn_channels": 128, "box_head_dim": 256}
    model = {
        "faster": lambda: build_faster_rcnn(3, **narrow),
        "mask": lambda: build_mask_rcnn(3, box_detections_per_img=10, **narrow),
        "keypoint": lambda: build_keypoint_rcnn(num_keypoints=4, num_classes=3, **narrow),
        "timm": lambda: build_faster_rcnn(3, backbone_source="timm", backbone_name="resnet18", **narrow),
    }[kind]()
    assert model.backbone.out_channels == 128
    assert model.rpn.head.conv[0][0].in_channels == 128
    head = model.roi_heads.box_head
    assert (head.fc6.in_features, head.fc6.out_features, head.fc7.out_features) == (128 * 7 * 7, 256, 256)
    assert model.roi_heads.box_predictor.cls_score.in_features == 256
    assert model.roi_heads.box_predictor.cls_score.out_features == 3
    images, targets = batch(masks=kind == "mask", keypoints=kind == "keypoint")
    model.train()
    losses = model(images, targets)
    assert torch.isfinite(sum(losses.values()))


def test_torchvision_architectures_refuse_the_width_options() -> None:
    with pytest.raises(ConfigError, match="fpn_channels and box_head_dim apply to the ResNet and timm"):
        build_faster_rcnn(3, variant="mobilenet_v3_large_fpn", fpn_channels=128)
    with pytest.raises(ConfigError, match="resnet50_fpn_v2 keeps torchvision's architecture"):
        build_mask_rcnn(3, variant="resnet50_fpn_v2", box_head_dim=256)


@pytest.mark.parametrize("build", [build_faster_rcnn, build_mask_rcnn])
def test_resnet50_v2_recipe(build) -> None:
    model = build(3, variant="resnet50_fpn_v2")
    assert type(model.roi_heads.box_head).__name__ == "FastRCNNConvFCHead"  # v2's conv box head
    assert len(model.rpn.head.conv) == 2  # and its two-conv RPN head
    images, targets = batch(masks=build is build_mask_rcnn)
    model.train()
    assert torch.isfinite(sum(model(images, targets).values()))


def test_pretrained_torchvision_backbone_loads_and_freezes(tmp_path: Path) -> None:
    reference = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = build_faster_rcnn(3, pretrained_backbone=path, trainable_layers=2)
    body = model.backbone.body
    torch.testing.assert_close(body.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)
    torch.testing.assert_close(body.bn1.running_mean, reference.bn1.running_mean)
    assert isinstance(body.bn1, FrozenBatchNorm2d)  # pretrained statistics stay fixed, as torchvision does
    trainable = {n.split(".")[0] for n, p in body.named_parameters() if p.requires_grad}
    assert trainable == {"layer3", "layer4"}


def test_from_scratch_backbone_trains_everything_with_batch_norm() -> None:
    body = build_faster_rcnn(3).backbone.body
    assert isinstance(body.bn1, torch.nn.BatchNorm2d)
    assert all(p.requires_grad for p in body.parameters())


def test_pretrained_mobilenet_backbone_loads(tmp_path: Path) -> None:
    reference = torchvision.models.mobilenet_v3_large()
    path = tmp_path / "mnv3.pth"
    torch.save(reference.state_dict(), path)
    model = build_faster_rcnn(3, variant="mobilenet_v3_large_fpn", pretrained_backbone=path)
    torch.testing.assert_close(model.backbone.body["0"][0].weight, reference.features[0][0].weight)


def test_pretrained_timm_backbone_loads_from_a_local_file(tmp_path: Path) -> None:
    reference = timm.create_model("resnet18")
    path = tmp_path / "timm_resnet18.pth"
    torch.save(reference.state_dict(), path)
    backbone = TimmFPNBackbone("resnet18", pretrained_path=path, trainable_layers=3)
    torch.testing.assert_close(backbone.body.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    frozen = {n.split(".")[0] for n, p in backbone.body.named_parameters() if not p.requires_grad}
    trainable = {n.split(".")[0] for n, p in backbone.body.named_parameters() if p.requires_grad}
    assert frozen == {"conv1", "layer1"} and trainable == {"layer2", "layer3", "layer4"}
    # Batch norm is frozen everywhere (buffers, no parameters left), as for torchvision backbones.
    assert (
        "Frozen" in type(backbone.body.bn1).__name__
        and "Frozen" in type(backbone.body.layer4[0].bn1).__name__
    )
    torch.testing.assert_close(backbone.body.layer1[0].bn1.running_var, reference.layer1[0].bn1.running_var)
    features = backbone(torch.rand(1, 3, 64, 64))
    assert list(features) == ["0", "1", "2", "3", "pool"]
    assert [f.shape[-1] for f in features.values()] == [16, 8, 4, 2, 1]


def test_full_weights_fine_tune_to_other_class_count(tmp_path: Path) -> None:
    source = build_faster_rcnn(3)
    path = tmp_path / "detector.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    target = build_faster_rcnn(6, weights_path=path)
    torch.testing.assert_close(
        target.backbone.fpn.layer_blocks[0][0].weight, source.backbone.fpn.layer_blocks[0][0].weight
    )
    assert target.roi_heads.box_predictor.cls_score.out_features == 6  # head kept fresh, not copied


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DependencyError, match="never downloaded"):
        build_faster_rcnn(3, pretrained_backbone=tmp_path / "missing.pth")
    with pytest.raises(DependencyError, match="not found"):
        build_faster_rcnn(3, backbone_source="timm", pretrained_backbone=tmp_path / "missing.pth")
    with pytest.raises(ConfigError, match="resnet50_fpn_v2"):
        build_keypoint_rcnn(4, variant="resnet50_fpn_v2")
    with pytest.raises(ConfigError, match="backbone_source"):
        build_faster_rcnn(3, backbone_source="hub")
    with pytest.raises(ConfigError, match="anchor_sizes"):
        build_faster_rcnn(3, anchor_sizes=((16,), (32,)))


def test_small_images_preset_is_explicit() -> None:
    small = build_faster_rcnn(3)
    full = build_faster_rcnn(3, small_images=False)
    assert small.rpn._post_nms_top_n["training"] == 300 and full.rpn._post_nms_top_n["training"] == 2000
    assert small.roi_heads.fg_bg_sampler.batch_size_per_image == 128
    overridden = build_faster_rcnn(3, box_batch_size_per_image=64)
    assert overridden.roi_heads.fg_bg_sampler.batch_size_per_image == 64
    custom_anchors = build_faster_rcnn(3, anchor_sizes=((16,), (32,), (64,), (128,), (256,)))
    assert custom_anchors.rpn.anchor_generator.sizes[0] == (16,)
