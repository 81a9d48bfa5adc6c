"""Video action recognition: cross-entropy on clips, clip- and video-level accuracy over the whole split.

The network (:mod:`litzoo.models.action_recognition`) maps ``N x 3 x T x H x W`` clips to logits.
This module adds:

- the training loss: cross-entropy on one clip per video (``label_smoothing`` optional);
- evaluation as the benchmarks do it: each evaluation sample is one of a video's ``num_clips``
  clips with its ``num_crops`` crops (:mod:`litzoo.datamodules.action_recognition.datamodule`); the
  crops' softmax scores are averaged into the clip's score (``average_clips="prob"``, MMAction's
  default; ``"logits"`` averages raw scores), the clips' into the video's. The clip scores of the
  whole split are gathered across DDP ranks (a torchmetrics state) and scored once, so every
  rank logs the same ``acc_top1``/``acc_top5`` (clips), ``video_acc_top1``/``video_acc_top5``
  (videos) and ``mean_class_acc`` (videos, the mean of the per-class accuracies) and ``loss`` (clips) under ``val/`` and
  ``test/``. Global rank 0 writes the per-class table to train.log and the video-level confusion
  matrix to ``confusion_matrix_{val,test}.png`` (and the test scores to ``scores_test.json``) in the
  run directory;
- prediction from a run directory (:meth:`ActionRecognitionTask.predict_inputs`): video files (or
  frame folders) -> the top-k classes, with the test protocol's clips and crops.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from litzoo.errors import ConfigError, DataError
from litzoo.platform.registry import build
from litzoo.tasks.base import EvaluatingTask, Scores, split_model_config

log = logging.getLogger("litzoo")

TASK = "action_recognition"
TARGETS = "video_clips"  # what the datamodule must say it loads (info()["targets"])
AVERAGES = ("prob", "logits")


def top_k_hits(scores: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """1 where the label is among the `k` highest scores (ties broken by the lower class index)."""
    k = min(k, scores.shape[1])
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return (order == labels[:, None]).any(dim=1).float()


def video_scores(
    scores: torch.Tensor, videos: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean clip score of every video that has clips, and its label (videos in index order)."""
    present = torch.unique(videos)
    position = torch.searchsorted(present, videos)
    sums = torch.zeros(len(present), scores.shape[1], dtype=torch.float64).index_add_(
        0, position, scores.double()
    )
    counts = torch.zeros(len(present), dtype=torch.float64).index_add_(
        0, position, torch.ones_like(videos).double()
    )
    video_labels = torch.zeros(len(present), dtype=torch.long).index_copy_(0, position, labels)
    return sums / counts[:, None], video_labels


class VideoMetrics(Metric):
    """One split's clip scores (gathered across ranks) and their clip- and video-level scores."""

    full_state_update = False

    def __init__(self, class_names: Sequence[str], probabilities: bool = True) -> None:
        super().__init__()
        self.class_names = list(class_names)
        self.probabilities = probabilities  # scores are softmax probabilities (else logits)
        for name in ("samples", "videos", "labels", "scores"):
            self.add_state(name, default=[], dist_reduce_fx="cat")
        self.last: dict[str, Any] | None = None

    def update(
        self, scores: torch.Tensor, labels: torch.Tensor, videos: torch.Tensor, samples: torch.Tensor
    ) -> None:
        self.scores.append(scores.detach().float())
        self.labels.append(labels.long())
        self.videos.append(videos.long())
        self.samples.append(samples.long())

    def compute(self) -> Scores:
        num_classes = len(self.class_names)
        if isinstance(self.scores, list) and not self.scores:  # after a DDP sync the states are tensors
            empty = {
                "acc_top1": 0.0,
                "acc_top5": 0.0,
                "video_acc_top1": 0.0,
                "video_acc_top5": 0.0,
                "mean_class_acc": 0.0,
            }
            return Scores(metrics=empty)
        scores, labels = dim_zero_cat(self.scores).cpu(), dim_zero_cat(self.labels).cpu()
        videos, samples = dim_zero_cat(self.videos).cpu(), dim_zero_cat(self.samples).cpu()
        # A sample evaluated twice (a sampler that repeats batches under DDP) counts once, and the samples
        # are put in split order, so the sums are the same however the ranks shared the split.
        unique, first = np.unique(samples.numpy(), return_index=True)
        keep = torch.from_numpy(first)
        scores, labels, videos = scores[keep], labels[keep], videos[keep]
        per_video, video_labels = video_scores(scores, videos, labels)
        predicted = per_video.argmax(dim=1)
        confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
        confusion.index_put_((video_labels, predicted), torch.ones_like(predicted), accumulate=True)
        support = confusion.sum(dim=1)
        per_class = confusion.diag().double() / support.clamp(min=1).double()
        present = support > 0
        log_probs = scores.clamp(min=1e-12).log() if self.probabilities else scores.log_softmax(dim=1)
        metrics = {
            "loss": float(F.nll_loss(log_probs, labels)),  # per clip, over the whole split
            "acc_top1": float(top_k_hits(scores, labels, 1).mean()),
            "acc_top5": float(top_k_hits(scores, labels, 5).mean()),
            "video_acc_top1": float(top_k_hits(per_video, video_labels, 1).mean()),
            "video_acc_top5": float(top_k_hits(per_video, video_labels, 5).mean()),
            "mean_class_acc": float(per_class[present].mean()) if present.any() else 0.0,
        }
        self.last = {
            "metrics": metrics,
            "confusion": confusion.tolist(),
            "per_class": {
                name: {"acc": float(per_class[i]), "videos": int(support[i])}
                for i, name in enumerate(self.class_names)
            },
            "clips": len(unique),
            "videos": len(per_video),
        }
        return Scores(metrics=metrics, tables={"video accuracy": self.table()})

    def table(self) -> str:
        rows = [f"{'class':<24} {'acc':>6} {'videos':>7}"]
        for name, row in (self.last or {}).get("per_class", {}).items():
            rows.append(f"{name[:24]:<24} {100 * row['acc']:6.1f} {row['videos']:7d}")
        return "\n".join(rows)


def save_confusion_png(
    confusion: Sequence[Sequence[int]], names: Sequence[str], path: Path, title: str
) -> Path:
    """The row-normalised confusion matrix as a PNG (true class = row), counts written in small matrices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion, dtype=np.float64)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(20.0, 2.5 + 0.45 * len(names))
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if len(names) <= 30:
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        for i in range(len(names)):
            for j in range(len(names)):
                if matrix[i, j]:
                    colour = "white" if rates[i, j] > 0.5 else "black"
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


class ActionRecognitionTask(EvaluatingTask):
    """Train a video classifier on clips and score it per clip and per video.

    Args:
        model: the model config entry; built with the data's ``num_classes``.
        data_info: :meth:`litzoo.datamodules.action_recognition.datamodule.VideoDataModule.info`.
        optim, sched, no_decay_norm_bias, ema_decay, max_grad_norm: see :class:`~litzoo.tasks.base.TaskModule`.
        label_smoothing: smoothing of the training targets.
        average_clips: ``prob`` (average softmax scores over crops and clips) or ``logits``.
        save_scores: write the test scores (per class, confusion matrix) to ``scores_test.json`` and the
            confusion matrices to PNG files in the run directory.
    """

    primary_metric = "video_acc_top1"
    table_title = "{name} per class (x100)"

    def __init__(
        self,
        model: dict,
        data_info: dict,
        optim: dict,
        sched: dict | None = None,
        no_decay_norm_bias: bool = True,
        ema_decay: float | None = None,
        label_smoothing: float = 0.0,
        average_clips: str = "prob",
        save_scores: bool = True,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__(optim, sched, no_decay_norm_bias, ema_decay, save_scores, max_grad_norm)
        self.save_hyperparameters()
        if data_info.get("targets") != TARGETS:
            raise ConfigError(
                f"task={TASK} needs video clips (data targets {TARGETS}), but the datamodule loads "
                f"{data_info.get('targets', 'other targets')}. Use a video dataset (data=moving_shapes, "
                "video_list, kinetics, ucf101, hmdb51)."
            )
        if average_clips not in AVERAGES:
            raise ConfigError(f"task.average_clips={average_clips!r}: use one of {', '.join(AVERAGES)}.")
        self.data_info = data_info
        self.class_names = [str(n) for n in data_info["class_names"]]
        self.num_classes = len(self.class_names)
        self.average_clips = average_clips
        self.label_smoothing = float(label_smoothing)
        arguments, _ = split_model_config(model)
        self.net = build(arguments, num_classes=self.num_classes)
        self.init_ema()

    # -- steps -------------------------------------------------------------------------------------

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Class logits (``N x K``) of normalised clips, with the evaluation weights."""
        return self.eval_net(clips)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        clips, labels = batch
        logits = self.net(clips)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        size = len(labels)
        self.log(
            "train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size, sync_dist=True
        )
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
        self.log("train/acc_top1", accuracy, on_step=False, on_epoch=True, batch_size=size, sync_dist=True)
        return loss

    def clip_scores(self, views: torch.Tensor) -> torch.Tensor:
        """``B x V x 3 x T x H x W`` views -> ``B x K`` clip scores (crops averaged)."""
        batch, crops = views.shape[:2]
        logits = self(views.flatten(0, 1)).float().view(batch, crops, -1)
        if self.average_clips == "prob":
            return logits.softmax(dim=-1).mean(dim=1)
        return logits.mean(dim=1)

    def _evaluate(self, batch: Sequence[torch.Tensor], stage: str) -> None:
        views, labels, videos, clips = batch
        scores = self.clip_scores(views)
        num_clips = int(self.data_info["views"][stage][0])
        samples = videos * num_clips + clips
        self.metrics_for(stage).update(scores, labels, videos, samples)
        log_probs = (
            scores.clamp(min=1e-12).log() if self.average_clips == "prob" else scores.log_softmax(dim=-1)
        )
        loss = F.nll_loss(log_probs, labels)
        self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=len(labels), sync_dist=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.clip_scores(batch[0])

    # -- evaluation ----------------------------------------------------------------------------------

    def make_metrics(self, split: str) -> VideoMetrics:
        return VideoMetrics(self.class_names, self.average_clips == "prob").to(self.device)

    def _finish(self, stage: str) -> None:
        super()._finish(stage)
        if self.trainer.sanity_checking or not self.trainer.is_global_zero or not self.save_detections:
            return
        last = self.metrics_for(stage).last
        if last is None:
            return
        folder = Path(self.trainer.default_root_dir)
        when = f"val videos, epoch {self.current_epoch}" if stage == "val" else "test videos"
        save_confusion_png(
            last["confusion"],
            self.class_names,
            folder / f"confusion_matrix_{stage}.png",
            f"{when}: top-1 {100 * last['metrics']['video_acc_top1']:.1f}%",
        )
        if stage == "test":
            path = folder / "scores_test.json"
            path.write_text(json.dumps(last, indent=2))
            log.info("Saved the test scores per class and the confusion matrix to %s", path)

    # -- prediction (python -m litzoo.predict <run_dir> clip.mp4) -----------------------------------

    @staticmethod
    def restore_arguments(hparams: dict[str, Any], run_dir: Any) -> dict[str, Any]:
        """The weights come from the checkpoint: do not look for the files training started from."""
        model = hparams.get("model")
        if not isinstance(model, dict):
            return hparams
        model = dict(model)
        for key in ("pretrained", "weights_path"):
            if key in model:
                model[key] = None
        return {**hparams, "model": model}

    def predict_inputs(
        self, inputs: list[str], batch_size: int = 16, top_k: int | None = None
    ) -> list[dict[str, Any]]:
        """The `top_k` (default 5) most probable classes of each video file (or frame folder), with the test
        protocol: ``test_clips`` uniform clips x ``test_crops`` crops, scores averaged.
        ``{"input", "label", "score", "top_k": [{"label", "index", "score"}, ...]}``."""
        from litzoo.datamodules.action_recognition.decoders import FrameFolderReader, make_decoder
        from litzoo.datamodules.action_recognition.sampling import clip_indices
        from litzoo.datamodules.action_recognition.transforms import eval_views

        spec = self.data_info["preprocess"]
        paths = [Path(p).expanduser() for p in inputs]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise DataError(f"Input video(s) not found: {', '.join(missing[:5])}. Give paths of video files.")
        decoder = make_decoder(spec.get("decoder", "pyav"))
        frames_reader = FrameFolderReader(spec["frame_template"], spec["frame_start"])
        clips, crops = int(spec["test_clips"]), int(spec["test_crops"])
        k = min(top_k or 5, self.num_classes)
        rows = []
        self.eval()
        for path in paths:
            views = []
            for clip in range(clips):

                def pick(n: int, clip: int = clip) -> np.ndarray:
                    return clip_indices(
                        n,
                        spec["sampling"],
                        spec["clip_len"],
                        spec["frame_stride"],
                        clip,
                        clips,
                        None,
                        spec["out_of_bound"],
                    )

                if path.is_dir():
                    count = _frame_count(path, spec["frame_template"], spec["frame_start"])
                    frames, _ = frames_reader.read_frames(path, count, pick, "its frame count")
                else:
                    frames, _ = decoder.read(path, pick)
                views.append(
                    eval_views(
                        frames, spec["crop_size"], spec["short_side"], spec["mean"], spec["std"], crops
                    )
                )
            stacked = torch.stack(views).to(self.device)
            with torch.no_grad():
                scores = torch.cat(
                    [self.clip_scores(c) for c in stacked.split(max(1, batch_size // crops))]
                ).mean(0)
            probabilities = scores if self.average_clips == "prob" else scores.softmax(dim=-1)
            values, indices = probabilities.cpu().topk(k)
            top = [
                {"label": self.class_names[i], "index": int(i), "score": float(s)}
                for s, i in zip(values.tolist(), indices.tolist())
            ]
            rows.append(
                {"input": str(path), "label": top[0]["label"], "score": top[0]["score"], "top_k": top}
            )
        return rows

    def format_prediction(self, prediction: dict[str, Any]) -> str:
        """``<file>\t<label> <probability>\t...``, most probable first."""
        return "\t".join(
            [prediction["input"], *(f"{t['label']} {t['score']:.4f}" for t in prediction["top_k"])]
        )


def _frame_count(folder: Path, template: str, start: int) -> int:
    """How many consecutive frames a folder holds from `start` (a folder given to predict has no list line)."""
    count = 0
    while (folder / template.format(start + count)).is_file():
        count += 1
    if not count:
        raise DataError(
            f"{folder} holds no frame named like {template.format(start)}; give a video file or a frame folder."
        )
    return count
