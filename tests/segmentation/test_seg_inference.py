"""Whole-image, sliding-window and multi-scale + flip inference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from litzoo.errors import ConfigError
from litzoo.vision.segmentation_inference import InferenceMode, segment, slide_logits, window_boxes


def pointwise_model() -> nn.Module:
    """Logits that depend on each pixel alone: every window sees the same logits as the whole image."""
    torch.manual_seed(0)
    return nn.Conv2d(3, 4, 1).eval()


def context_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.ReLU(), nn.Conv2d(8, 4, 5, padding=2)).eval()


def test_windows_are_placed_as_mmsegmentation_places_them():
    # ceil((5 - 3) / 2) + 1 = 2 rows and ceil((7 - 3) / 2) + 1 = 3 columns; the last ones end at the border.
    assert window_boxes(5, 7, (3, 3), (2, 2)) == [
        (0, 0, 3, 3),
        (0, 2, 3, 5),
        (0, 4, 3, 7),
        (2, 0, 5, 3),
        (2, 2, 5, 5),
        (2, 4, 5, 7),
    ]
    assert window_boxes(1024, 2048, (769, 769), (513, 513)) == [
        (top, left, top + 769, left + 769) for top in (0, 255) for left in (0, 513, 1026, 1279)
    ]


def test_an_image_smaller_than_the_window_is_one_window_the_image_itself():
    model, image = context_model(), torch.randn(1, 3, 20, 30)
    assert window_boxes(20, 30, (64, 64), (48, 48)) == [(0, 0, 20, 30)]
    with torch.no_grad():
        assert torch.equal(slide_logits(model, image, (64, 64), (48, 48)), model(image))
        slide = InferenceMode(mode="slide", crop_size=(64, 64), stride=(48, 48))
        assert torch.equal(segment(model, image, slide), segment(model, image, InferenceMode()))


def test_overlapping_windows_average_to_the_whole_image_for_a_pointwise_model():
    model, images = pointwise_model(), torch.randn(2, 3, 37, 53)
    with torch.no_grad():
        averaged = slide_logits(model, images, (16, 24), (10, 13), window_batch=3)
        assert torch.allclose(averaged, model(images), atol=1e-6)


def test_sliding_windows_differ_from_the_whole_image_where_context_matters():
    model, image = context_model(), torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        slide = slide_logits(model, image, (24, 24), (16, 16))
        whole = model(image)
    assert slide.shape == whole.shape
    assert not torch.allclose(slide, whole, atol=1e-4)  # the windows' borders see zero padding
    assert torch.allclose(slide[..., 2:6, 2:6], whole[..., 2:6, 2:6], atol=1e-5)  # interior of one window


def test_flip_and_scales_average_probabilities_at_the_output_size():
    model, image = pointwise_model(), torch.randn(1, 3, 24, 32)
    with torch.no_grad():
        plain = segment(model, image, InferenceMode(), output_size=(48, 64))
        flipped = segment(model, image, InferenceMode(flip=True), output_size=(48, 64))
        multi = segment(model, image, InferenceMode(scales=(0.5, 1.0, 1.5), flip=True), output_size=(48, 64))
    assert plain.shape == multi.shape == (1, 4, 48, 64)
    assert torch.allclose(plain.sum(dim=1), torch.ones(1, 48, 64), atol=1e-5)  # probabilities
    assert torch.allclose(flipped, plain, atol=1e-6)  # a pointwise model is mirror-equivariant
    assert torch.allclose(multi.sum(dim=1), torch.ones(1, 48, 64), atol=1e-5)
    assert not torch.allclose(multi, plain, atol=1e-4)


def test_the_mode_is_read_from_the_config_and_checked():
    mode = InferenceMode.from_config({"mode": "slide", "crop_size": 769, "stride": [513, 400], "flip": True})
    assert (mode.crop_size, mode.stride, mode.flip, mode.scales) == ((769, 769), (513, 400), True, (1.0,))
    assert InferenceMode.from_config(None) == InferenceMode()
    with pytest.raises(ConfigError, match="crop_size=\\[h, w\\] and stride"):
        InferenceMode.from_config({"mode": "slide"})
    with pytest.raises(ConfigError, match="whole, slide"):
        InferenceMode.from_config({"mode": "tiles"})
    with pytest.raises(ConfigError, match="positive factors"):
        InferenceMode.from_config({"scales": [0.0, 1.0]})


def test_a_sliding_window_left_unset_is_the_training_crop_stepped_by_two_thirds():
    from litzoo.tasks.segmentation import slide_defaults

    assert slide_defaults({"mode": "slide"}, [769, 769]) == {
        "mode": "slide",
        "crop_size": [769, 769],
        "stride": [513, 513],
    }  # MMSegmentation's Cityscapes setting
    assert slide_defaults({"mode": "slide", "stride": None}, [512, 1024])["stride"] == [341, 683]
    assert slide_defaults({"mode": "slide", "crop_size": 64, "stride": [8, 9]}, [512, 512]) == {
        "mode": "slide",
        "crop_size": [64, 64],
        "stride": [8, 9],
    }  # what is given is kept
    assert slide_defaults({"mode": "whole"}, [512, 512]) == {"mode": "whole"}
    assert slide_defaults(None, [512, 512]) is None
    with pytest.raises(ConfigError, match="needs a window size"):  # no crop known: the mode's own message
        InferenceMode.from_config(slide_defaults({"mode": "slide"}, None))
