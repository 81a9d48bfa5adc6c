"""Clip- and video-level scores: checked against scikit-learn, multi-clip and multi-crop averaging, each
sample counted once however the split was sharded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, log_loss, top_k_accuracy_score

from litzoo.tasks.action_recognition import VideoMetrics, top_k_hits, video_scores

NAMES = [f"c{i}" for i in range(7)]


def random_split(seed: int, videos: int = 40, clips: int = 3):
    rng = np.random.default_rng(seed)
    labels = np.arange(videos) % len(NAMES)
    scores = rng.dirichlet(np.ones(len(NAMES)), size=videos * clips)
    video = np.repeat(np.arange(videos), clips)
    return (
        torch.tensor(scores),
        torch.tensor(labels[video]),
        torch.tensor(video),
        torch.arange(videos * clips),
    )


def test_scores_match_scikit_learn_on_clips_and_on_clip_averaged_videos():
    scores, labels, videos, samples = random_split(0)
    metrics = VideoMetrics(NAMES)
    for chunk in torch.arange(len(scores)).split(16):  # batches arrive in pieces
        metrics.update(scores[chunk], labels[chunk], videos[chunk], samples[chunk])
    result = metrics.compute().metrics
    every = list(range(len(NAMES)))
    assert result["acc_top1"] == pytest.approx(top_k_accuracy_score(labels, scores, k=1, labels=every))
    assert result["acc_top5"] == pytest.approx(top_k_accuracy_score(labels, scores, k=5, labels=every))
    mean = scores.view(40, 3, -1).mean(dim=1).numpy()  # each video's three clips averaged
    video_labels = labels.view(40, 3)[:, 0].numpy()
    assert result["video_acc_top1"] == pytest.approx(
        top_k_accuracy_score(video_labels, mean, k=1, labels=every)
    )
    assert result["video_acc_top5"] == pytest.approx(
        top_k_accuracy_score(video_labels, mean, k=5, labels=every)
    )
    assert result["mean_class_acc"] == pytest.approx(balanced_accuracy_score(video_labels, mean.argmax(1)))
    assert result["loss"] == pytest.approx(log_loss(labels, scores, labels=every))
    confusion = np.array(metrics.last["confusion"])
    assert confusion.sum() == 40 and np.trace(confusion) == (mean.argmax(1) == video_labels).sum()


def test_averaging_clips_can_turn_wrong_clips_into_a_right_video():
    # one video, label 0: two clips lean to class 1 a little, one is sure of class 0
    scores = torch.tensor([[0.4, 0.6, 0.0], [0.45, 0.55, 0.0], [0.9, 0.1, 0.0]])
    per_video, labels = video_scores(scores, torch.tensor([5, 5, 5]), torch.tensor([0, 0, 0]))
    torch.testing.assert_close(per_video, torch.tensor([[1.75 / 3, 1.25 / 3, 0.0]], dtype=torch.float64))
    metrics = VideoMetrics(["a", "b", "c"])
    metrics.update(scores, labels.repeat(3), torch.tensor([5, 5, 5]), torch.tensor([0, 1, 2]))
    result = metrics.compute().metrics
    assert result["acc_top1"] == pytest.approx(1 / 3) and result["video_acc_top1"] == 1.0


def test_a_sample_seen_twice_counts_once():
    scores, labels, videos, samples = random_split(1, videos=10, clips=2)
    once, twice = VideoMetrics(NAMES), VideoMetrics(NAMES)
    once.update(scores, labels, videos, samples)
    twice.update(scores, labels, videos, samples)
    twice.update(scores[:6], labels[:6], videos[:6], samples[:6])  # a repeated batch
    assert twice.compute().metrics == once.compute().metrics


def test_ties_go_to_the_lower_class_index():
    hits = top_k_hits(torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]), torch.tensor([0, 1]), 1)
    assert hits.tolist() == [1.0, 0.0]


class Constant(torch.nn.Module):
    """Logits that depend on the crop (the mean of its first channel): crops give different scores."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = x[:, 0].mean(dim=(1, 2, 3))
        return torch.stack([value, -value, torch.zeros_like(value)], dim=1)


def test_crops_are_averaged_as_probabilities_or_as_logits():
    from litzoo.tasks.action_recognition import ActionRecognitionTask

    task = ActionRecognitionTask.__new__(ActionRecognitionTask)
    torch.nn.Module.__init__(task)
    task.net, task.ema, task.average_clips = Constant(), None, "prob"
    views = torch.zeros(1, 3, 3, 2, 4, 4)
    views[0, 0, 0], views[0, 1, 0], views[0, 2, 0] = 1.0, 2.0, -3.0
    logits = torch.tensor([[1.0, -1.0, 0.0], [2.0, -2.0, 0.0], [-3.0, 3.0, 0.0]])
    torch.testing.assert_close(task.clip_scores(views), logits.softmax(dim=1).mean(0, keepdim=True))
    task.average_clips = "logits"
    torch.testing.assert_close(task.clip_scores(views), logits.mean(0, keepdim=True))
