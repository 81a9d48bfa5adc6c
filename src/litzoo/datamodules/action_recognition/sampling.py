"""Which frames of a video make a clip: dense clips (T frames at stride s) and TSN segments.

Numpy only; every function returns frame indices from 0, so the decoders fetch exactly these.

- Dense clips (I3D, R(2+1)D, SlowFast): a clip spans ``window = (T - 1) * s + 1`` frames. Training
  draws its start uniformly from ``0 .. num_frames - window``; evaluation takes ``N`` clips whose
  starts are spread uniformly, ``start_i = floor((num_frames - window) * (2 i + 1) / (2 N))`` (one clip:
  the centre). A video shorter than the window starts at 0 and its indices wrap around
  (``out_of_bound="loop"``, MMAction's default) or stop at the last frame (``"repeat_last"``).
- Segments (TSN, Wang et al. 2016): the video is cut into ``K`` equal segments, ``edge_k =
  floor(k * num_frames / K)``; training takes a random frame of each, evaluation its middle frame.
  With fewer frames than segments, segments share frames.
"""

from __future__ import annotations

import numpy as np

from litzoo.errors import ConfigError

MODES = ("dense", "segments")
OUT_OF_BOUND = ("loop", "repeat_last")


def check_sampling(mode: str, clip_len: int, stride: int, out_of_bound: str = "loop") -> None:
    if mode not in MODES:
        raise ConfigError(f"data.sampling={mode!r} is not a sampling mode; use one of {', '.join(MODES)}.")
    if int(clip_len) < 1 or int(stride) < 1:
        raise ConfigError(
            f"data.clip_len={clip_len} and data.frame_stride={stride} must be positive (frames per clip and "
            "the step between them)."
        )
    if out_of_bound not in OUT_OF_BOUND:
        raise ConfigError(f"data.out_of_bound={out_of_bound!r}: use one of {', '.join(OUT_OF_BOUND)}.")


def clip_window(clip_len: int, stride: int) -> int:
    """How many consecutive frames a dense clip spans."""
    return (int(clip_len) - 1) * int(stride) + 1


def dense_indices(
    num_frames: int, clip_len: int, stride: int, start: int, out_of_bound: str = "loop"
) -> np.ndarray:
    """The frames of one dense clip starting at `start`, kept inside ``0 .. num_frames - 1``."""
    indices = int(start) + np.arange(int(clip_len), dtype=np.int64) * int(stride)
    if out_of_bound == "loop":
        return indices % int(num_frames)
    return np.minimum(indices, int(num_frames) - 1)


def train_start(num_frames: int, clip_len: int, stride: int, rng: np.random.Generator) -> int:
    """A random start such that the clip fits (0 for a video shorter than the clip)."""
    room = int(num_frames) - clip_window(clip_len, stride)
    return int(rng.integers(0, room + 1)) if room > 0 else 0


def eval_starts(num_frames: int, clip_len: int, stride: int, num_clips: int) -> list[int]:
    """`num_clips` starts spread uniformly over the video (all 0 for a video shorter than the clip)."""
    room = max(0, int(num_frames) - clip_window(clip_len, stride))
    return [(room * (2 * i + 1)) // (2 * int(num_clips)) for i in range(int(num_clips))]


def segment_edges(num_frames: int, num_segments: int) -> np.ndarray:
    return (np.arange(int(num_segments) + 1, dtype=np.int64) * int(num_frames)) // int(num_segments)


def segment_indices(num_frames: int, num_segments: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """One frame per segment: random within it (`rng` given: training) or its middle (evaluation)."""
    edges = segment_edges(num_frames, num_segments)
    lengths = np.maximum(edges[1:] - edges[:-1], 1)
    offsets = (edges[1:] - edges[:-1]) // 2 if rng is None else rng.integers(0, lengths)
    return np.minimum(edges[:-1] + offsets, int(num_frames) - 1)


def clip_indices(
    num_frames: int,
    mode: str,
    clip_len: int,
    stride: int,
    clip: int | None,
    num_clips: int,
    rng: np.random.Generator | None,
    out_of_bound: str = "loop",
) -> np.ndarray:
    """The frames of a training clip (`rng` given, `clip` None) or of evaluation clip `clip` of `num_clips`.

    In segment mode evaluation clip ``c`` shifts every segment's frame by ``c / num_clips`` of a segment
    (TSN's test-time "num_clips" sampling); with one clip it is the middle frame.
    """
    if num_frames < 1:
        raise ValueError("a video has at least one frame")
    if mode == "segments":
        if rng is not None:
            return segment_indices(num_frames, clip_len, rng)
        if num_clips <= 1:
            return segment_indices(num_frames, clip_len)
        edges = segment_edges(num_frames, clip_len)
        lengths = edges[1:] - edges[:-1]
        offsets = (lengths * (2 * int(clip) + 1)) // (2 * int(num_clips))
        return np.minimum(edges[:-1] + offsets, int(num_frames) - 1)
    if rng is not None:
        start = train_start(num_frames, clip_len, stride, rng)
    else:
        start = eval_starts(num_frames, clip_len, stride, num_clips)[int(clip or 0)]
    return dense_indices(num_frames, clip_len, stride, start, out_of_bound)
