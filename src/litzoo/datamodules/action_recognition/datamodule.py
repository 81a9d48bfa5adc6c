"""Datamodules of the action-recognition family: list files (frame folders or videos), Kinetics, UCF101,
HMDB51 and the embedded moving shapes.

A training sample is one clip per video and epoch, ``(clip, label)`` with ``clip`` a normalised
``3 x T x h x w`` tensor (a random dense clip or TSN segments, scale-jittered, cropped, flipped). An
evaluation sample is one of a video's ``num_clips`` uniformly spaced clips,
``(views, label, video, clip)``: ``views`` is ``num_crops x 3 x T x h x w`` (1 = centre crop, 3 = three
crops along the long side), ``video`` the video's index in the split, so the task can average
the clips of each video into its prediction however the split was sharded across ranks. Val
uses ``val_clips x val_crops`` (default 1 x 1, cheap), test ``test_clips x test_crops`` (the
benchmark protocol, e.g. 10 x 3).

Decoding happens in the DataLoader workers (``num_workers``), with the configured decoder
(:mod:`.decoders`; PyAV seeking to the needed frames by default). Which videos make a split comes
from the torch-free readers (:mod:`.formats`), so the layout checks see the same lists.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from litzoo.data.base import BaseDataModule
from litzoo.datamodules.action_recognition import formats
from litzoo.datamodules.action_recognition.decoders import (
    FrameFolderReader,
    VideoReader,
    check_decoder,
    make_decoder,
)
from litzoo.datamodules.action_recognition.moving_shapes import SOURCES, generate_moving_shapes
from litzoo.datamodules.action_recognition.sampling import check_sampling, clip_indices
from litzoo.datamodules.action_recognition.transforms import MULTI_SCALES, TrainClipTransform, eval_views
from litzoo.errors import ConfigError, DataError

log = logging.getLogger("litzoo")

# What this family's batches hold (``info()["targets"]``; the action-recognition task checks it).
TARGETS = "video_clips"
KINETICS_MEAN = (0.432, 0.394, 0.376)  # torchvision's video models (Kinetics statistics)
KINETICS_STD = (0.228, 0.221, 0.217)
VERIFY = ("files", "none")


class GlobalRandom:
    """numpy's global generator with the `Generator.integers` signature the samplers use (the loader seeds
    and checkpoints the global one in every worker)."""

    @staticmethod
    def integers(low: Any, high: Any = None) -> Any:
        return np.random.randint(low, high)


class ClipSampling:
    """How clips are cut: a plain record of the sampling settings."""

    def __init__(self, mode: str, clip_len: int, stride: int, out_of_bound: str) -> None:
        check_sampling(mode, clip_len, stride, out_of_bound)
        self.mode, self.clip_len, self.stride, self.out_of_bound = (
            mode,
            int(clip_len),
            int(stride),
            out_of_bound,
        )

    def picker(self, clip: int | None, num_clips: int, train: bool) -> Any:
        rng = GlobalRandom() if train else None
        return lambda n: clip_indices(
            n, self.mode, self.clip_len, self.stride, clip, num_clips, rng, self.out_of_bound
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "sampling": self.mode,
            "clip_len": self.clip_len,
            "frame_stride": self.stride,
            "out_of_bound": self.out_of_bound,
        }


class ClipDataset(Dataset):
    """The clips of one split (see the module docstring for train vs evaluation samples)."""

    def __init__(
        self,
        root: Path,
        split: formats.VideoSplit,
        reader: VideoReader,
        frames: FrameFolderReader,
        sampling: ClipSampling,
        train_transform: TrainClipTransform | None,
        eval_spec: dict[str, Any] | None,
        num_clips: int = 1,
        num_crops: int = 1,
    ) -> None:
        self.root, self.split, self.reader, self.frames = root, split, reader, frames
        self.sampling, self.train_transform, self.eval_spec = sampling, train_transform, eval_spec
        self.num_clips, self.num_crops = int(num_clips), int(num_crops)
        self.train = train_transform is not None
        self.targets = [r.label for r in split.records]

    def __len__(self) -> int:
        return len(self.split.records) * (1 if self.train else self.num_clips)

    def read(self, video: int, clip: int | None) -> np.ndarray:
        """The decoded frames of one clip of video `video` (``T x H x W x 3`` uint8)."""
        record = self.split.records[video]
        pick = self.sampling.picker(clip, self.num_clips, self.train)
        path = self.root / record.path
        if record.is_frames:
            frames, _ = self.frames.read_frames(path, record.num_frames, pick, self.split.source)
        else:
            frames, _ = self.reader.read(path, pick)
        return frames

    def __getitem__(self, index: int) -> tuple:
        if self.train:
            record = self.split.records[index]
            return self.train_transform(self.read(index, None)), record.label
        video, clip = divmod(int(index), self.num_clips)
        record = self.split.records[video]
        views = eval_views(self.read(video, clip), num_crops=self.num_crops, **self.eval_spec)
        return views, record.label, video, clip


class VideoDataModule(BaseDataModule):
    """What the action-recognition datamodules share: sampling, transforms, decoders, splits, info().

    Subclasses say where the root is and which videos make a split (:meth:`split_videos`), and may
    generate their files (:meth:`prepare`).

    Args:
        batch_size: clips per training batch per device (``eval_batch_size``: clips per eval batch,
            each with its crops).
        clip_len, frame_stride, sampling, out_of_bound: the clip (:mod:`.sampling`): ``dense`` clips
            of ``clip_len`` frames ``frame_stride`` apart, or ``segments`` (TSN: ``clip_len`` segments).
        train_short_side: short side before the training crop (``[lo, hi]``: random per clip).
        crop_size: training and evaluation crop (``[h, w]`` or one number).
        multi_scales, hflip_prob: TSN's multi-scale crop factors and the flip probability.
        eval_short_side: short side of evaluation clips before their crops.
        val_clips, val_crops, test_clips, test_crops: evaluation views per video.
        mean, std: RGB normalisation on the 0-1 scale.
        decoder, seek: the video decoder (``pyav``, ``torchcodec``, ``decord``) and, for PyAV,
            whether to seek to the clip (``false`` decodes from the start of the file).
        frame_template, frame_start: how frame folders name their frames (``img_{:05d}.jpg`` from 1).
        missing_videos: a listed video that is not on disk stops the run (``error``) or is left out (``skip``).
        verify: ``files`` checks at setup that every frame folder holds its last listed frame; ``none`` skips.
        loader_args: see :class:`~litzoo.data.base.BaseDataModule`.
    """

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int | str = 0,
        clip_len: int = 8,
        frame_stride: int = 8,
        sampling: str = "dense",
        out_of_bound: str = "loop",
        train_short_side: int | Sequence[int] = (256, 320),
        crop_size: int | Sequence[int] = 224,
        multi_scales: Sequence[float] = MULTI_SCALES,
        hflip_prob: float = 0.5,
        eval_short_side: int = 256,
        val_clips: int = 1,
        val_crops: int = 1,
        test_clips: int = 10,
        test_crops: int = 3,
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
        decoder: str = "pyav",
        seek: bool = True,
        frame_template: str = "img_{:05d}.jpg",
        frame_start: int = 1,
        missing_videos: str = "error",
        verify: str = "files",
        **loader_args: Any,
    ) -> None:
        super().__init__(batch_size, num_workers, **loader_args)
        for key, value in (
            ("val_clips", val_clips),
            ("val_crops", val_crops),
            ("test_clips", test_clips),
            ("test_crops", test_crops),
        ):
            if key.endswith("crops") and int(value) not in (1, 3):
                raise ConfigError(
                    f"data.{key}={value}: use 1 (centre crop) or 3 (three crops along the long side)."
                )
            if int(value) < 1:
                raise ConfigError(f"data.{key}={value} must be at least 1.")
        if verify not in VERIFY:
            raise ConfigError(f"data.verify={verify!r} is not known; use one of {', '.join(VERIFY)}.")
        check_decoder(decoder)
        self.sampling = ClipSampling(sampling, clip_len, frame_stride, out_of_bound)
        self.crop_size = [int(crop_size)] * 2 if isinstance(crop_size, int) else [int(v) for v in crop_size]
        self.train_short_side = (
            [int(train_short_side)] * 2
            if isinstance(train_short_side, int)
            else [int(v) for v in train_short_side]
        )
        self.multi_scales, self.hflip_prob = [float(s) for s in multi_scales], float(hflip_prob)
        self.eval_short_side = int(eval_short_side)
        self.views = {"val": (int(val_clips), int(val_crops)), "test": (int(test_clips), int(test_crops))}
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
        self.decoder, self.seek = decoder, bool(seek)
        self.frame_template, self.frame_start = str(frame_template), int(frame_start)
        self.missing_videos = formats.check_missing_policy(missing_videos)
        self.verify = verify
        self._splits: dict[str, formats.VideoSplit | None] = {}

    # -- what subclasses provide ----------------------------------------------------------------

    root: Path

    def split_videos(self, split: str) -> formats.VideoSplit | None:
        """The videos of ``train``, ``val`` or ``test`` (``None``: no test split, test uses val)."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Make the files exist (the embedded dataset generates them); a no-op for datasets on disk."""

    def prepare_data(self) -> None:
        self.prepare()

    # -- splits -----------------------------------------------------------------------------------

    def videos(self, split: str) -> formats.VideoSplit:
        """The split's videos, read once (test falls back to val when the dataset has no test split)."""
        if split not in self._splits:
            self.prepare()
            found = self.split_videos(split)
            if found is not None and self.verify == "files":
                formats.check_frame_folders(self.root, found, self.frame_template, self.frame_start)
            self._splits[split] = found
        found = self._splits[split]
        if found is None:
            if split != "test":
                raise DataError(f"{type(self).__name__} has no {split} split.")
            return self.videos("val")
        return found

    def class_names(self) -> list[str]:
        return list(self.videos("train").class_names)

    def dataset_for(self, split: str) -> ClipDataset:
        videos = self.videos(split)
        reader = make_decoder(self.decoder, self.seek)
        frames = FrameFolderReader(self.frame_template, self.frame_start)
        if split == "train":
            transform = TrainClipTransform(
                self.crop_size, self.train_short_side, self.mean, self.std, self.multi_scales, self.hflip_prob
            )
            return ClipDataset(self.root, videos, reader, frames, self.sampling, transform, None)
        clips, crops = self.views["val" if split == "val" else "test"]
        return ClipDataset(
            self.root,
            videos,
            reader,
            frames,
            self.sampling,
            None,
            self.eval_spec(),
            num_clips=clips,
            num_crops=crops,
        )

    def eval_spec(self) -> dict[str, Any]:
        return {
            "crop_size": self.crop_size,
            "short_side": self.eval_short_side,
            "mean": self.mean,
            "std": self.std,
        }

    def setup(self, stage: str | None = None) -> None:
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in splits.get(stage or "", ("train", "val", "test")):
            if getattr(self, f"{split}_set") is None:
                dataset = self.dataset_for(split)
                setattr(self, f"{split}_set", dataset)
                videos = dataset.split
                log.info(
                    "%s split: %d videos (%s), %d samples, from %s",
                    split,
                    len(videos),
                    "frame folders"
                    if videos.records[0].is_frames
                    else f"video files, decoder {self.decoder}",
                    len(dataset),
                    videos.source,
                )

    # -- what the task needs to know --------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        names = self.class_names()
        return {
            "targets": TARGETS,  # what the batches hold; the task checks it (no task names in data)
            "num_classes": len(names),
            "class_names": names,
            "num_val_videos": len(self.videos("val")),
            "views": {split: list(v) for split, v in self.views.items()},
            "preprocess": {
                **self.sampling.as_dict(),
                **self.eval_spec(),
                "test_clips": self.views["test"][0],
                "test_crops": self.views["test"][1],
                "decoder": self.decoder,
                "frame_template": self.frame_template,
                "frame_start": self.frame_start,
            },
        }


# --------------------------------------------------------------------------- list files


class VideoListDataModule(VideoDataModule):
    """GluonCV/MMAction list files ``root/{train,val[,test]}.txt`` (+ ``classes.txt``); see
    :data:`formats.VIDEO_LIST_LAYOUT`. Without test.txt, test metrics use val."""

    def __init__(self, root: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()

    def split_videos(self, split: str) -> formats.VideoSplit | None:
        return formats.list_split(self.root, split, "video_list", self.missing_videos)


class MovingShapesDataModule(VideoListDataModule):
    """The embedded default (:mod:`.moving_shapes`): generated on first use under ``root``, read through the
    list-file reader from ``root/videos`` (mp4, decoded by ``data.decoder``) or ``root/rawframes``."""

    def __init__(
        self,
        root: str,
        source: str = "videos",
        num_train: int = 360,
        num_val: int = 72,
        num_test: int = 72,
        num_frames: int = 16,
        size: int = 48,
        generator_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        if source not in SOURCES:
            raise ConfigError(f"data.source={source!r}: use videos (mp4 files) or rawframes (frame folders).")
        super().__init__(str(Path(root).expanduser() / source), **kwargs)
        self.generated_root = Path(root).expanduser()
        self.generator = {
            "num_train": num_train,
            "num_val": num_val,
            "num_test": num_test,
            "num_frames": num_frames,
            "size": size,
            "seed": generator_seed,
        }

    def prepare(self) -> None:
        generate_moving_shapes(self.generated_root, **self.generator)


# --------------------------------------------------------------------------- Kinetics / UCF101 / HMDB51


class KineticsDataModule(VideoDataModule):
    """Kinetics-400/700 (see :data:`formats.KINETICS_LAYOUT`); val is also the test split (the test labels
    are not public)."""

    def __init__(self, root: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()

    def split_videos(self, split: str) -> formats.VideoSplit | None:
        if split == "test":
            return None
        return formats.kinetics_split(self.root, split, "kinetics", self.missing_videos)


class UCF101DataModule(VideoDataModule):
    """UCF101 with its official split ``fold`` (1-3): train = trainlist0N, val = test = testlist0N."""

    def __init__(self, root: str, fold: int = 1, videos_dir: str = "UCF-101", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root, self.fold, self.videos_dir = Path(root).expanduser(), int(fold), videos_dir

    def split_videos(self, split: str) -> formats.VideoSplit | None:
        return formats.ucf101_split(
            self.root, split, self.fold, "ucf101", self.videos_dir, self.missing_videos
        )


class HMDB51DataModule(VideoDataModule):
    """HMDB51 with its official split ``fold`` (1-3): train = the videos marked 1, val = test = those marked 2."""

    def __init__(self, root: str, fold: int = 1, videos_dir: str = "hmdb51", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root, self.fold, self.videos_dir = Path(root).expanduser(), int(fold), videos_dir

    def split_videos(self, split: str) -> formats.VideoSplit | None:
        return formats.hmdb51_split(
            self.root, split, self.fold, "hmdb51", self.videos_dir, self.missing_videos
        )
