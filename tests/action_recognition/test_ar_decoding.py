"""Decoding the generated mp4 files: PyAV seeking returns exactly the frames of a full decode, the frame
folders hold the same pictures (up to JPEG/H.264 loss), and undecodable files are named, never zero-filled."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from litzoo.datamodules.action_recognition.decoders import (
    FrameFolderReader,
    PyAVDecoder,
    check_decoder,
    make_decoder,
)
from litzoo.errors import ConfigError, DataError


def full_decode(path) -> np.ndarray:
    """Every frame, in presentation order, by PyAV without seeking (the reference)."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def a_video(root, split="train", number=1):
    line = (root / "videos" / f"{split}.txt").read_text().splitlines()[number]
    return root / "videos" / line.split()[0]


@pytest.mark.parametrize(
    "indices",
    [[0, 1, 2, 3], [9, 10, 11, 12, 13, 14, 15], [7, 8], [15], [15, 3, 3, 8], list(range(0, 16, 2)), [5, 0]],
)
def test_seek_and_decode_returns_the_frames_of_a_full_decode(shapes_root, indices):
    """Clips starting inside a GOP (key frames every 8), crossing one, at the end, repeated and out of order."""
    path = a_video(shapes_root)
    reference = full_decode(path)
    assert len(reference) == 16
    asked = []
    frames, returned = PyAVDecoder(seek=True).read(path, lambda n: asked.append(n) or np.array(indices))
    assert asked == [16] and returned.tolist() == indices
    np.testing.assert_array_equal(frames, reference[indices])
    whole, _ = PyAVDecoder(seek=False).read(path, lambda n: np.array(indices))
    np.testing.assert_array_equal(whole, reference[indices])


def test_frame_folders_hold_the_same_video(shapes_root):
    line = (shapes_root / "rawframes" / "train.txt").read_text().splitlines()[1]
    folder, count, _ = line.split()
    frames, _ = FrameFolderReader().read_frames(
        shapes_root / "rawframes" / folder, int(count), lambda n: np.arange(n)
    )
    video = full_decode(a_video(shapes_root))
    assert frames.shape == video.shape == (16, 32, 32, 3)
    assert np.abs(frames.astype(int) - video.astype(int)).mean() < 8  # JPEG vs H.264: the same pictures


def test_the_shapes_move_so_frames_differ(shapes_root):
    video = full_decode(a_video(shapes_root, number=0)).astype(int)  # move_left
    assert np.abs(video[0] - video[-1]).mean() > 5


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "the file is empty: 0 bytes"), (b"\x00garbage, not a video" * 50, "FFmpeg")],
)
def test_an_unreadable_video_is_named_with_the_fix(tmp_path, content, message):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(
        DataError, match=rf"The video {path} cannot be decoded \({message}.*data.bad_samples=skip"
    ):
        PyAVDecoder().read(path, lambda n: np.arange(4))


def test_a_missing_video_and_a_missing_frame_are_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        PyAVDecoder().read(tmp_path / "gone.mp4", lambda n: np.arange(4))
    (tmp_path / "v").mkdir()
    with pytest.raises(DataError, match=r"holds 0 file\(s\), but the list file says it has 8 frames"):
        FrameFolderReader().read_frames(tmp_path / "v", 8, lambda n: np.arange(n))


@pytest.mark.parametrize("decoder", ["torchcodec", "decord"])
def test_optional_decoders_are_used_when_installed_and_refused_clearly_otherwise(shapes_root, decoder):
    module = {"torchcodec": "torchcodec", "decord": "decord"}[decoder]
    if importlib.util.find_spec(module) is None:
        with pytest.raises(
            ConfigError, match=rf"data.decoder={decoder} needs the '{module}' package.*data.decoder=pyav"
        ):
            check_decoder(decoder)
        return
    path = a_video(shapes_root)
    frames, _ = make_decoder(decoder).read(path, lambda n: np.array([9, 10, 11]))
    # Measured: torchcodec 0.17 (Debian's FFmpeg 5.1) and eva-decord 0.6.1 return PyAV's frames exactly.
    np.testing.assert_array_equal(frames, full_decode(path)[[9, 10, 11]])


def test_decords_frame_size_bug_is_named_not_blamed_on_the_video(tmp_path):
    pytest.importorskip("decord")
    from litzoo.datamodules.action_recognition.moving_shapes import draw_clip, write_mp4

    path = write_mp4(tmp_path / "w48.mp4", draw_clip(np.random.default_rng(0), 0, 8, 48))
    with pytest.raises(DataError, match=r"known decord bug for some frame sizes.*data.decoder=pyav"):
        make_decoder("decord").read(path, lambda n: np.arange(4))


def test_an_unknown_decoder_is_refused():
    with pytest.raises(ConfigError, match="data.decoder='opencv' is not a video decoder"):
        check_decoder("opencv")
