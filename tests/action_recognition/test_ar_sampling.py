"""Clip and segment sampler indices, exactly, including videos shorter than the clip."""

from __future__ import annotations

import numpy as np
import pytest

from litzoo.datamodules.action_recognition.sampling import (
    clip_indices,
    clip_window,
    dense_indices,
    eval_starts,
    segment_indices,
    train_start,
)
from litzoo.errors import ConfigError


class FixedDraws:
    """A generator whose `integers` returns the given values in turn (records what it was asked)."""

    def __init__(self, *values) -> None:
        self.values, self.calls = list(values), []

    def integers(self, low, high=None):
        self.calls.append((low, high))
        return self.values.pop(0)


def test_a_dense_clip_spans_t_frames_at_stride_s():
    assert clip_window(8, 8) == 57 and clip_window(32, 2) == 63 and clip_window(1, 5) == 1
    assert dense_indices(100, 4, 3, 10).tolist() == [10, 13, 16, 19]


def test_training_draws_the_start_from_every_position_where_the_clip_fits():
    draws = FixedDraws(7)
    assert train_start(100, 8, 8, draws) == 7 and draws.calls == [(0, 100 - 57 + 1)]
    starts = {train_start(20, 4, 2, np.random.default_rng(s)) for s in range(200)}
    assert starts == set(range(0, 20 - 7 + 1))  # 0..13, each reachable, none past the end


def test_a_video_shorter_than_the_clip_starts_at_zero_and_loops_or_repeats_its_last_frame():
    draws = FixedDraws()
    assert train_start(5, 4, 2, draws) == 0 and draws.calls == []  # window 7 > 5 frames: nothing to draw
    assert dense_indices(5, 4, 2, 0, "loop").tolist() == [0, 2, 4, 1]
    assert dense_indices(5, 4, 2, 0, "repeat_last").tolist() == [0, 2, 4, 4]
    assert clip_indices(3, "dense", 8, 1, None, 1, np.random.default_rng(0)).tolist() == [
        0,
        1,
        2,
        0,
        1,
        2,
        0,
        1,
    ]
    assert eval_starts(5, 4, 2, 3) == [0, 0, 0]


def test_evaluation_clips_are_spread_uniformly_the_single_one_centred():
    # 100 frames, clip of 8 x stride 2 (window 15): room 85
    assert eval_starts(100, 8, 2, 1) == [42]
    assert eval_starts(100, 8, 2, 2) == [21, 63]
    assert eval_starts(100, 8, 2, 10) == [4, 12, 21, 29, 38, 46, 55, 63, 72, 80]
    assert eval_starts(15, 8, 2, 4) == [0, 0, 0, 0]  # exactly one window: every clip is the whole video
    assert clip_indices(100, "dense", 8, 2, 1, 2, None).tolist() == list(range(63, 78, 2))


def test_segments_take_a_random_frame_of_each_for_training_and_the_middle_for_evaluation():
    # 10 frames, 3 segments: edges 0, 3, 6, 10
    assert segment_indices(10, 3).tolist() == [1, 4, 8]
    draws = FixedDraws(np.array([2, 0, 3]))
    assert segment_indices(10, 3, draws).tolist() == [2, 3, 9]
    assert draws.calls[0][0] == 0 and draws.calls[0][1].tolist() == [3, 3, 4]
    for seed in range(50):  # every draw stays inside its segment
        drawn = segment_indices(10, 3, np.random.default_rng(seed))
        assert 0 <= drawn[0] < 3 <= drawn[1] < 6 <= drawn[2] < 10


def test_fewer_frames_than_segments_share_frames():
    assert segment_indices(3, 8).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert segment_indices(1, 4, np.random.default_rng(0)).tolist() == [0, 0, 0, 0]


def test_segment_evaluation_clips_shift_within_each_segment():
    # 12 frames, 3 segments of 4: clip c of 2 takes offset 4 * (2c + 1) // 4
    assert clip_indices(12, "segments", 3, 1, 0, 2, None).tolist() == [1, 5, 9]
    assert clip_indices(12, "segments", 3, 1, 1, 2, None).tolist() == [3, 7, 11]
    assert clip_indices(12, "segments", 3, 1, 0, 1, None).tolist() == [2, 6, 10]


@pytest.mark.parametrize(
    ("mode", "clip_len", "stride", "bound", "message"),
    [
        ("random", 8, 1, "loop", "data.sampling='random' is not a sampling mode"),
        ("dense", 0, 1, "loop", "must be positive"),
        ("dense", 8, 1, "wrap", "data.out_of_bound='wrap'"),
    ],
)
def test_impossible_sampling_settings_are_refused(mode, clip_len, stride, bound, message):
    from litzoo.datamodules.action_recognition.sampling import check_sampling

    with pytest.raises(ConfigError, match=message):
        check_sampling(mode, clip_len, stride, bound)
