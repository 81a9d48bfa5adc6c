"""Read the frames a clip needs: from video files (PyAV by default; torchcodec or decord when installed) or
from frame folders.

Every reader answers ``read(path, pick) -> (frames, indices)``: it opens the video, learns how many
frames it has, asks ``pick(num_frames)`` for the frame indices (from 0) and returns them as an
``len(indices) x H x W x 3`` uint8 array (RGB), in the order asked (repeated indices repeated).

- :class:`PyAVDecoder` (``data.decoder=pyav``, the default: PyAV's wheels ship FFmpeg, so it works
  wherever ``pip install av`` does). ``seek=True`` seeks to the key frame before the first needed
  frame and decodes forward only to the last one, instead of decoding the whole file from the
  start (``seek=False``; what the benchmark compares). Frame ``i`` is the one whose presentation
  time is ``start + i / fps`` (constant frame rate, as Kinetics/UCF/HMDB are re-encoded).
- :class:`TorchCodecDecoder`, :class:`DecordDecoder`: the same contract over ``torchcodec`` and
  ``decord`` (neither is a litzoo dependency; asking for one that is not installed is a
  `ConfigError` naming the pip command).
- :class:`FrameFolderReader`: pre-extracted JPEG frames (``img_00001.jpg`` ...), as GluonCV and
  MMAction's ``rawframes`` lists name them.

A file that cannot be decoded (missing, zero-length, not a video, no video stream, no frame) is a
`DataError` naming it: with ``data.bad_samples=skip`` the video is left out of its batch and listed
in the run record; no reader ever returns zero frames in its place.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from litzoo.errors import ConfigError, DataError

DECODERS = ("pyav", "torchcodec", "decord")
Pick = Callable[[int], np.ndarray]

_INSTALL = {
    "pyav": "pip install av (or litzoo's video extra: pip install 'litzoo[video]')",
    "torchcodec": "pip install torchcodec (a build matching your torch version; it needs FFmpeg libraries)",
    "decord": "pip install decord (or eva-decord where no decord wheel exists)",
}
_MODULES = {"pyav": "av", "torchcodec": "torchcodec", "decord": "decord"}


def check_decoder(decoder: str) -> None:
    """Torch-free: the decoder is known and importable here."""
    if decoder not in DECODERS:
        raise ConfigError(
            f"data.decoder={decoder!r} is not a video decoder; use one of {', '.join(DECODERS)}."
        )
    if importlib.util.find_spec(_MODULES[decoder]) is None:
        raise ConfigError(
            f"data.decoder={decoder} needs the {_MODULES[decoder]!r} package, which is not installed here. "
            f"Install it ({_INSTALL[decoder]}), or use data.decoder=pyav (PyAV, the default)."
        )


def make_decoder(decoder: str = "pyav", seek: bool = True) -> VideoReader:
    check_decoder(decoder)
    if decoder == "pyav":
        return PyAVDecoder(seek=seek)
    if decoder == "torchcodec":
        try:  # torchcodec loads the system's FFmpeg libraries on import, not when it is installed
            import torchcodec.decoders  # noqa: F401
        except (ImportError, OSError, RuntimeError) as error:
            raise ConfigError(
                f"data.decoder=torchcodec: torchcodec is installed but does not load ({str(error)[:200]}). "
                "It needs FFmpeg's shared libraries (versions 4-7, e.g. apt-get install ffmpeg) and a "
                "release built for this torch; or use data.decoder=pyav (FFmpeg ships in PyAV's wheel)."
            ) from None
        return TorchCodecDecoder()
    return DecordDecoder()


class VideoReader:
    """The reader contract (see the module docstring)."""

    def read(self, path: str | Path, pick: Pick) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def _undecodable(path: str | Path, detail: str) -> DataError:
    return DataError(
        f"The video {path} cannot be decoded ({detail}). Re-download or re-encode it (e.g. ffmpeg -i in.mp4 "
        "-c:v libx264 out.mp4), remove it from the split, or pass data.bad_samples=skip to leave it out."
    )


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"The video {path} does not exist. Check data.root and the split's list of videos.")
    if path.stat().st_size == 0:
        raise _undecodable(path, "the file is empty: 0 bytes")


def _ordered(indices: np.ndarray, frames: dict[int, np.ndarray], path: Path, num_frames: int) -> np.ndarray:
    """The frames in the order asked; an index past the last decodable frame gets the last frame there is."""
    if not frames:
        raise _undecodable(path, f"none of its {num_frames} frames decodes")
    available = np.array(sorted(frames))
    out = []
    for index in indices.tolist():
        if index not in frames:  # the header promised more frames than the stream holds
            earlier = available[available <= index]
            index = int(earlier[-1]) if earlier.size else int(available[0])
        out.append(frames[index])
    return np.stack(out)


class PyAVDecoder(VideoReader):
    """FFmpeg through PyAV; `seek` decodes only from the key frame before the clip to its last frame."""

    def __init__(self, seek: bool = True, threads: int = 1) -> None:
        self.seek = bool(seek)
        self.threads = int(threads)

    def read(self, path: str | Path, pick: Pick) -> tuple[np.ndarray, np.ndarray]:
        import av

        path = Path(path)
        _check_file(path)
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise _undecodable(path, "it holds no video stream")
                stream = container.streams.video[0]
                stream.thread_count = self.threads
                num_frames = self._count(container, stream, path)
                indices = np.asarray(pick(num_frames), dtype=np.int64)
                frames = self._decode(container, stream, set(indices.tolist()), path)
        except av.FFmpegError as error:
            raise _undecodable(path, f"FFmpeg: {error}") from None
        return _ordered(indices, frames, path, num_frames), indices

    @staticmethod
    def _rate(stream) -> float:
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        if not rate:
            return 0.0
        return float(rate)

    def _count(self, container, stream, path: Path) -> int:
        count = int(stream.frames or 0)
        if count <= 0:  # some containers (webm, some avi) do not store it: count the packets
            count = sum(1 for packet in container.demux(stream) if packet.size)
            container.seek(0)
        if count <= 0:
            raise _undecodable(path, "its video stream has no frames")
        return count

    def _index(self, frame, stream, start: int, rate: float) -> int:
        if frame.pts is None or not rate:
            return -1
        return int(round((frame.pts - start) * float(stream.time_base) * rate))

    def _decode(self, container, stream, wanted: set[int], path: Path) -> dict[int, np.ndarray]:
        rate = self._rate(stream)
        start = int(stream.start_time or 0)
        first, last = min(wanted), max(wanted)
        if self.seek and first > 0 and rate and stream.time_base:
            target = start + int(first / rate / float(stream.time_base))
            container.seek(target, stream=stream, backward=True, any_frame=False)
        frames: dict[int, np.ndarray] = {}
        counter = -1
        for frame in container.decode(stream):
            counter += 1
            index = self._index(frame, stream, start, rate)
            if index < 0:  # no timestamps: count frames (only right when decoding from the start)
                index = counter
            if index in wanted:
                frames[index] = frame.to_ndarray(format="rgb24")
            if index >= last and self.seek:
                break
        return frames


class TorchCodecDecoder(VideoReader):
    """torchcodec's ``VideoDecoder`` (exact frame-index seeking from its own scan of the file)."""

    def read(self, path: str | Path, pick: Pick) -> tuple[np.ndarray, np.ndarray]:
        from torchcodec.decoders import VideoDecoder

        path = Path(path)
        _check_file(path)
        try:
            decoder = VideoDecoder(str(path), seek_mode="exact")
            num_frames = int(decoder.metadata.num_frames or len(decoder))
            indices = np.asarray(pick(num_frames), dtype=np.int64)
            batch = decoder.get_frames_at(indices=indices.tolist()).data
        except (RuntimeError, ValueError) as error:
            raise _undecodable(path, f"torchcodec: {error}") from None
        return batch.permute(0, 2, 3, 1).numpy(), indices


class DecordDecoder(VideoReader):
    """decord's ``VideoReader`` (``get_batch`` seeks to the frames)."""

    def read(self, path: str | Path, pick: Pick) -> tuple[np.ndarray, np.ndarray]:
        import decord

        path = Path(path)
        _check_file(path)
        try:
            reader = decord.VideoReader(str(path), num_threads=1)
            num_frames = len(reader)
            indices = np.asarray(pick(num_frames), dtype=np.int64)
            batch = reader.get_batch(indices.tolist()).asnumpy()
        except (RuntimeError, decord.DECORDError) as error:  # type: ignore[attr-defined]
            if "DECORDArrayCopyFromTo" in str(error):  # decord, not the file: dmlc/decord#336
                raise DataError(
                    f"decord decodes {path} but cannot copy its frames out (a known decord bug for some "
                    "frame sizes, e.g. 48 or 72 px wide: dmlc/decord#336). Use data.decoder=pyav or "
                    "data.decoder=torchcodec for these videos."
                ) from None
            raise _undecodable(path, f"decord: {error}") from None
        return batch, indices


class FrameFolderReader(VideoReader):
    """Pre-extracted frames ``<folder>/<template.format(start + i)>``; the folder's frame count is the list's."""

    def __init__(self, template: str = "img_{:05d}.jpg", start: int = 1) -> None:
        self.template, self.start = template, int(start)

    def read_frames(
        self, folder: str | Path, num_frames: int, pick: Pick, source: str = "the list file"
    ) -> tuple[np.ndarray, np.ndarray]:
        from PIL import Image, UnidentifiedImageError

        folder = Path(folder)
        indices = np.asarray(pick(int(num_frames)), dtype=np.int64)
        frames: dict[int, np.ndarray] = {}
        for index in sorted(set(indices.tolist())):
            file = folder / self.template.format(self.start + index)
            if not file.is_file():
                present = len([p for p in folder.iterdir() if p.is_file()]) if folder.is_dir() else 0
                raise DataError(
                    f"The frame folder {folder} holds {present} file(s), but {source} says it has {num_frames} "
                    f"frames ({file.name} is missing). Correct num_frames in the list, re-extract the frames, or "
                    f"set data.frame_template/data.frame_start to how the frames are named (now {self.template} "
                    f"from {self.start})."
                )
            try:
                with Image.open(file) as image:
                    frames[index] = np.asarray(image.convert("RGB"))
            except (UnidentifiedImageError, OSError) as error:
                raise DataError(f"The frame {file} cannot be read as an image ({error}).") from None
        return np.stack([frames[i] for i in indices.tolist()]), indices


def frame_size(frames: Sequence[np.ndarray]) -> tuple[int, int]:
    return int(frames[0].shape[0]), int(frames[0].shape[1])
