"""Layout checks of the action-recognition datasets (torch-free; run before anything heavy is imported).

A data config names one with `layout: litzoo.datamodules.action_recognition.layouts.<function>`. Each
reads the configured splits exactly as the datamodule will (:mod:`.formats`): a missing list or split
file, a line that is not in the format, a label outside the class list, a listed video that is not on
disk (unless ``data.missing_videos=skip``) or a frame folder with fewer frames than its list line says
stops the run within a second, naming the file and the fix. The decoder is checked too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.datamodules.action_recognition import formats
from litzoo.datamodules.action_recognition.decoders import check_decoder
from litzoo.datamodules.action_recognition.sampling import check_sampling


def _common(data: Mapping[str, Any], layout: str) -> tuple[Path, str, str]:
    name = str(data.get("name", "?"))
    check_decoder(str(data.get("decoder", "pyav")))
    check_sampling(
        str(data.get("sampling", "dense")),
        int(data.get("clip_len", 8)),
        int(data.get("frame_stride", 1)),
        str(data.get("out_of_bound", "loop")),
    )
    missing = formats.check_missing_policy(str(data.get("missing_videos", "error")))
    root = Path(str(data["root"])).expanduser()
    if not root.is_dir():
        raise formats.layout_error(name, root, "the directory does not exist", layout)
    return root, name, missing


def _frames(data: Mapping[str, Any], root: Path, split: formats.VideoSplit | None) -> None:
    if split is not None and str(data.get("verify", "files")) == "files":
        formats.check_frame_folders(
            root, split, str(data.get("frame_template", "img_{:05d}.jpg")), int(data.get("frame_start", 1))
        )


def check_video_list(data: Mapping[str, Any]) -> None:
    root, name, missing = _common(data, formats.VIDEO_LIST_LAYOUT)
    for split in ("train", "val", "test"):
        _frames(data, root, formats.list_split(root, split, name, missing))


def check_kinetics(data: Mapping[str, Any]) -> None:
    root, name, missing = _common(data, formats.KINETICS_LAYOUT)
    for split in ("train", "val"):
        formats.kinetics_split(root, split, name, missing)


def check_ucf101(data: Mapping[str, Any]) -> None:
    root, name, missing = _common(data, formats.UCF101_LAYOUT)
    for split in ("train", "val"):
        formats.ucf101_split(
            root, split, int(data.get("fold", 1)), name, str(data.get("videos_dir", "UCF-101")), missing
        )


def check_hmdb51(data: Mapping[str, Any]) -> None:
    root, name, missing = _common(data, formats.HMDB51_LAYOUT)
    for split in ("train", "val"):
        formats.hmdb51_split(
            root, split, int(data.get("fold", 1)), name, str(data.get("videos_dir", "hmdb51")), missing
        )
