"""timm classifiers follow the data; pretrained weights load offline or fail with a clear message."""

from __future__ import annotations

import pytest
import torch
from conftest import CONFIG_DIR
from omegaconf import OmegaConf

from litzoo.errors import DependencyError
from litzoo.models.classification import create_classifier
from litzoo.platform.registry import build, entries_serving


@pytest.mark.parametrize("model", entries_serving("classification", "model", [CONFIG_DIR]))
def test_every_classifier_builds_for_small_grey_images(model):
    entry = OmegaConf.load(CONFIG_DIR / "model" / f"{model}.yaml")
    net = build(entry, num_classes=7, in_chans=1, image_size=32).eval()
    with torch.no_grad():
        logits = net(torch.randn(2, 1, 32, 32))
    assert logits.shape == (2, 7)


def test_local_pretrained_file_loads_backbone_and_replaces_the_head(tmp_path):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = timm.create_model("resnet18", num_classes=1000)
    path = tmp_path / "resnet18.safetensors"
    save_file(source.state_dict(), str(path))
    net = create_classifier("resnet18", num_classes=10, in_chans=3, pretrained=str(path))
    assert torch.equal(net.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
    assert net.fc.out_features == 10
    # in_chans=1: timm sums the RGB filters of the first convolution.
    grey = create_classifier("resnet18", num_classes=10, in_chans=1, pretrained=str(path))
    assert torch.allclose(grey.conv1.weight, source.conv1.weight.sum(dim=1, keepdim=True), atol=1e-6)


def test_missing_local_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(DependencyError, match="model.pretrained=.*nope.pth does not exist"):
        create_classifier("resnet18", num_classes=10, pretrained=str(tmp_path / "nope.pth"))


def test_uncached_timm_weights_fail_without_touching_the_network(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(DependencyError) as error:
        create_classifier("efficientnet_b0", num_classes=10, pretrained=True)
    message = str(error.value)
    assert "not on this machine" in message and "model.pretrained=/path/to/efficientnet_b0" in message


def test_vit_is_built_for_the_data_image_size():
    net = create_classifier(
        "vit_tiny_patch16_224", num_classes=3, in_chans=1, image_size=64, fixed_input_size=True
    )
    assert net.patch_embed.img_size == (64, 64)
