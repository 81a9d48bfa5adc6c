"""Where each action-recognition dataset keeps its videos, and which videos with which labels make a split.

Pure path and text logic (no torch, no decoding): the layout checks run it before anything heavy is
imported, and the datamodules build their datasets from the same lists. Every reader returns a
:class:`VideoSplit` (one :class:`VideoRecord` per video, in file order, plus the class names) or
raises a `DataError` naming the file, the line and the fix.

Formats (paths in list files are relative to the dataset root):

- GluonCV / MMAction list files, ``root/{train,val[,test]}.txt`` + optional ``root/classes.txt``
  (one class name per line, line n = label n): ``<folder> <num_frames> <label>`` per line over
  pre-extracted frame folders (``img_00001.jpg``, ...) or ``<video> <label>`` over video files;
- Kinetics-400/700: ``root/{train,val}/<class>/<youtube_id>_<start:06d>_<end:06d>.mp4`` and the
  official CSV (``label,youtube_id,time_start,time_end,split[,is_cc]``) at ``root/{split}.csv`` or
  ``root/annotations/{split}.csv``; the classes are the CSV's labels, sorted;
- UCF101: ``root/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` and ``root/ucfTrainTestlist/`` with
  ``classInd.txt`` (``1 ApplyEyeMakeup``), ``trainlist0N.txt`` (``<Class>/<video>.avi <label from 1>``)
  and ``testlist0N.txt`` (``<Class>/<video>.avi``);
- HMDB51: ``root/hmdb51/<class>/<video>.avi`` and ``root/testTrainMulti_7030_splits/<class>_test_splitN.txt``
  (``<video>.avi <0|1|2>``: 1 = train, 2 = test, 0 = unused in that split).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from litzoo.errors import DataError

log = logging.getLogger("litzoo")

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")
MISSING_POLICIES = ("error", "skip")

VIDEO_LIST_LAYOUT = """  <root>/train.txt, val.txt[, test.txt]   one video per line, paths relative to <root>:
      frame folders:  <folder> <num_frames> <label>    e.g. rawframes/jump/v01 48 3
      video files:    <video> <label>                  e.g. videos/jump/v01.mp4 3
  <root>/<folder>/img_00001.jpg, img_00002.jpg, ...   (data.frame_template, from data.frame_start)
  <root>/classes.txt                                   optional: one class name per line (line n = label n)"""
KINETICS_LAYOUT = """  <root>/train/<class>/<youtube_id>_<start:06d>_<end:06d>.mp4
  <root>/val/<class>/<youtube_id>_<start:06d>_<end:06d>.mp4
  <root>/train.csv, val.csv (or <root>/annotations/train.csv, val.csv): the official
      label,youtube_id,time_start,time_end,split[,is_cc] files (without them the class folders are listed)"""
UCF101_LAYOUT = """  <root>/UCF-101/<Class>/v_<Class>_gXX_cYY.avi
  <root>/ucfTrainTestlist/classInd.txt               1 ApplyEyeMakeup ...
  <root>/ucfTrainTestlist/trainlist0{1,2,3}.txt      ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1
  <root>/ucfTrainTestlist/testlist0{1,2,3}.txt       ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"""
HMDB51_LAYOUT = """  <root>/hmdb51/<class>/<video>.avi
  <root>/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt   <video>.avi 1|2|0 (1 train, 2 test)"""


@dataclass(frozen=True)
class VideoRecord:
    """One video of a split: a video file, or a frame folder with `num_frames` frames."""

    path: str
    label: int
    num_frames: int | None = (
        None  # frame folders: what the list file says; video files: None (read from the file)
    )

    @property
    def is_frames(self) -> bool:
        return self.num_frames is not None


@dataclass
class VideoSplit:
    """The videos of one split, in file order, and the dataset's class names."""

    records: list[VideoRecord]
    class_names: list[str]
    source: str
    missing: list[str] = field(default_factory=list)  # listed videos left out (data.missing_videos=skip)

    def __len__(self) -> int:
        return len(self.records)


def layout_error(name: str, root: Path, problem: str, layout: str) -> DataError:
    return DataError(f"data={name}: {problem} (data.root={root}). Expected layout:\n{layout}")


def check_missing_policy(policy: str) -> str:
    if policy not in MISSING_POLICIES:
        from litzoo.errors import ConfigError

        raise ConfigError(
            f"data.missing_videos={policy!r} is not a policy; use error (stop, naming them) or skip (leave "
            "them out and log how many)."
        )
    return policy


def apply_missing(
    records: list[VideoRecord], root: Path, listed_in: Path, policy: str, name: str
) -> tuple[list[VideoRecord], list[str]]:
    """The records whose video file or frame folder exists; the others stop the run or are left out."""
    kept, missing = [], []
    for record in records:
        path = root / record.path
        if (path.is_dir() if record.is_frames else path.is_file()) or (record.is_frames and path.is_file()):
            kept.append(record)
        else:
            missing.append(record.path)
    if missing and policy == "error":
        raise DataError(
            f"data={name}: {listed_in} names {len(missing)} video(s) that are not under {root} (first: "
            f"{', '.join(missing[:3])}). Download or extract them there, fix the paths in the list, or pass "
            "data.missing_videos=skip to train without them (Kinetics always misses some YouTube videos)."
        )
    if missing:
        log.warning(
            "%s: %d of %d listed videos are missing and left out (first: %s)",
            listed_in,
            len(missing),
            len(records),
            missing[0],
        )
    return kept, missing


# --------------------------------------------------------------------------- list files (GluonCV / MMAction)


def read_classes_file(path: Path) -> list[str]:
    """``classes.txt``: one class name per line (line n = label n); blank trailing lines ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"Cannot read {path} ({error}); it should hold one class name per line.") from None
    while lines and not lines[-1].strip():
        lines.pop()
    names = [line.strip() for line in lines]
    for number, name in enumerate(names, start=1):
        if not name:
            raise DataError(f"{path}, line {number}: empty class name. Give one class name per line.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(f"{path} lists {', '.join(duplicates[:5])} more than once; give each class once.")
    if not names:
        raise DataError(f"{path} lists no class; give one class name per line.")
    return names


def parse_list_line(line: str, where: str) -> VideoRecord:
    """One list-file line: ``<folder> <num_frames> <label>`` (frame folder) or ``<video> <label>``."""
    parts = line.split()
    if len(parts) >= 3 and _is_int(parts[-1]) and _is_int(parts[-2]):
        path = " ".join(parts[:-2])
        frames = int(parts[-2])
        if frames < 1:
            raise DataError(
                f"{where}: {path} is listed with {frames} frames. A frame folder line is "
                "`<folder> <num_frames> <label>` with num_frames >= 1."
            )
        return VideoRecord(path, _label(parts[-1], where), frames)
    if len(parts) >= 2 and _is_int(parts[-1]):
        return VideoRecord(" ".join(parts[:-1]), _label(parts[-1], where))
    raise DataError(
        f"{where}: {line.strip()!r} is not a list-file line. Write `<folder> <num_frames> <label>` for a frame "
        "folder or `<video> <label>` for a video file, with integer labels (paths relative to data.root)."
    )


def read_list_file(path: Path) -> list[VideoRecord]:
    """Every line of a list file, in order; frame-folder and video lines may not be mixed."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"Cannot read the list file {path} ({error}).") from None
    records = [parse_list_line(line, f"{path}, line {n}") for n, line in enumerate(lines, 1) if line.strip()]
    if not records:
        raise DataError(f"The list file {path} lists no video; give one `<video> <label>` line per video.")
    kinds = {r.is_frames for r in records}
    if len(kinds) > 1:
        first = next(n for n, r in enumerate(records, 1) if r.is_frames != records[0].is_frames)
        raise DataError(
            f"{path} mixes frame-folder lines (`<folder> <num_frames> <label>`) and video lines "
            f"(`<video> <label>`; the first switch is at video {first}). Keep one kind per list file."
        )
    return records


def list_split(
    root: Path, split: str, name: str = "video_list", missing_videos: str = "error"
) -> VideoSplit | None:
    """``root/<split>.txt`` (``None`` when a test list is absent); labels checked against classes.txt."""
    path = root / f"{split}.txt"
    if not path.is_file():
        if split == "test":
            return None
        raise layout_error(name, root, f"the list file {split}.txt is missing", VIDEO_LIST_LAYOUT)
    records = read_list_file(path)
    names = list_classes(root, name)
    for _number, record in enumerate(records, start=1):
        if record.label >= len(names):
            raise DataError(
                f"{path}: {record.path} has label {record.label}, but "
                + (
                    f"{root / 'classes.txt'} lists {len(names)} classes (labels 0-{len(names) - 1})"
                    if (root / "classes.txt").is_file()
                    else f"the train list's labels go up to {len(names) - 1}"
                )
                + ". Fix the label, or list every class in classes.txt (line n = label n)."
            )
    kept, missing = apply_missing(records, root, path, missing_videos, name)
    return VideoSplit(kept, names, str(path), missing)


def list_classes(root: Path, name: str = "video_list") -> list[str]:
    """classes.txt's names, or (without it) "0".."K-1" for the labels of the train list."""
    classes = root / "classes.txt"
    if classes.is_file():
        return read_classes_file(classes)
    train = root / "train.txt"
    if not train.is_file():
        raise layout_error(name, root, "the list file train.txt is missing", VIDEO_LIST_LAYOUT)
    top = max(r.label for r in read_list_file(train))
    return [str(i) for i in range(top + 1)]


def write_list_file(path: Path, records: Sequence[VideoRecord]) -> None:
    """Write records as a GluonCV/MMAction list file (what the embedded default does)."""
    lines = [f"{r.path} {r.num_frames} {r.label}" if r.is_frames else f"{r.path} {r.label}" for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- Kinetics


def kinetics_csv(root: Path, split: str) -> Path | None:
    for candidate in (root / f"{split}.csv", root / "annotations" / f"{split}.csv"):
        if candidate.is_file():
            return candidate
    return None


def kinetics_file_name(youtube_id: str, start: int, end: int, suffix: str = ".mp4") -> str:
    """``<youtube_id>_<start:06d>_<end:06d>.mp4``, how the Kinetics downloaders name a clip."""
    return f"{youtube_id}_{start:06d}_{end:06d}{suffix}"


def _read_kinetics_csv(path: Path) -> list[tuple[str, str, int, int]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            needed = {"label", "youtube_id", "time_start", "time_end"}
            if not reader.fieldnames or not needed <= set(reader.fieldnames):
                raise DataError(
                    f"{path} is not a Kinetics annotation CSV: its header is {reader.fieldnames}, expected "
                    "label,youtube_id,time_start,time_end,split[,is_cc]."
                )
            rows = []
            for number, row in enumerate(reader, start=2):
                try:
                    rows.append(
                        (
                            row["label"],
                            row["youtube_id"],
                            int(float(row["time_start"])),
                            int(float(row["time_end"])),
                        )
                    )
                except (TypeError, ValueError):
                    raise DataError(
                        f"{path}, line {number}: time_start/time_end must be numbers (got "
                        f"{row.get('time_start')!r}, {row.get('time_end')!r})."
                    ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"Cannot read {path} ({error}).") from None
    return rows


def kinetics_classes(root: Path, name: str = "kinetics") -> list[str]:
    csv_path = kinetics_csv(root, "train")
    if csv_path is not None:
        return sorted({row[0] for row in _read_kinetics_csv(csv_path)})
    folder = root / "train"
    if not folder.is_dir():
        raise layout_error(name, root, "neither train.csv nor the train/ folder is there", KINETICS_LAYOUT)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise layout_error(name, root, "train/ holds no class folder", KINETICS_LAYOUT)
    return classes


def kinetics_split(
    root: Path, split: str, name: str = "kinetics", missing_videos: str = "error"
) -> VideoSplit:
    """The videos of ``train`` or ``val``: the CSV's rows (their files under split/<class>/), else the folders."""
    classes = kinetics_classes(root, name)
    index = {c: i for i, c in enumerate(classes)}
    folder = root / split
    csv_path = kinetics_csv(root, split)
    if csv_path is None:
        if not folder.is_dir():
            raise layout_error(
                name, root, f"neither {split}.csv nor the {split}/ folder is there", KINETICS_LAYOUT
            )
        records = []
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            if class_dir.name not in index:
                raise DataError(
                    f"data={name}: {class_dir} is a class the train split does not have. Remove it or add "
                    f"train/{class_dir.name}/."
                )
            for video in sorted(class_dir.iterdir()):
                if video.suffix.lower() in VIDEO_SUFFIXES:
                    records.append(VideoRecord(str(video.relative_to(root)), index[class_dir.name]))
        if not records:
            raise layout_error(name, root, f"{split}/ holds no video", KINETICS_LAYOUT)
        return VideoSplit(records, classes, str(folder))
    records = []
    for label, youtube_id, start, end in _read_kinetics_csv(csv_path):
        if label not in index:
            raise DataError(
                f"{csv_path}: the class {label!r} (video {youtube_id}) is not a class of the train CSV. Use the "
                "train and val CSVs of the same Kinetics release."
            )
        file = kinetics_file_name(youtube_id, start, end)
        class_dir = (
            label
            if (folder / label).is_dir() or not (folder / label.replace(" ", "_")).is_dir()
            else label.replace(" ", "_")
        )
        records.append(VideoRecord(f"{split}/{class_dir}/{file}", index[label]))
    if not records:
        raise DataError(f"{csv_path} lists no video.")
    kept, missing = apply_missing(records, root, csv_path, missing_videos, name)
    return VideoSplit(kept, classes, str(csv_path), missing)


# --------------------------------------------------------------------------- UCF101


def ucf101_classes(root: Path, name: str = "ucf101") -> list[str]:
    path = root / "ucfTrainTestlist" / "classInd.txt"
    if not path.is_file():
        raise layout_error(name, root, "ucfTrainTestlist/classInd.txt is missing", UCF101_LAYOUT)
    names: dict[int, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not _is_int(parts[0]):
            raise DataError(f"{path}, line {number}: {line!r} is not `<index from 1> <ClassName>`.")
        names[int(parts[0])] = parts[1]
    if sorted(names) != list(range(1, len(names) + 1)):
        raise DataError(f"{path}: the class indices must run 1..{len(names)} without gaps.")
    return [names[i] for i in range(1, len(names) + 1)]


def ucf101_split(
    root: Path,
    split: str,
    fold: int = 1,
    name: str = "ucf101",
    videos_dir: str = "UCF-101",
    missing_videos: str = "error",
) -> VideoSplit:
    """``train`` = trainlist0<fold>.txt; ``val`` and ``test`` = testlist0<fold>.txt (labels from the class folder)."""
    classes = ucf101_classes(root, name)
    lower = {
        c.lower(): i for i, c in enumerate(classes)
    }  # classInd and folders differ in case (HandstandPushups)
    list_name = f"{'trainlist' if split == 'train' else 'testlist'}{int(fold):02d}.txt"
    path = root / "ucfTrainTestlist" / list_name
    if not path.is_file():
        raise layout_error(name, root, f"ucfTrainTestlist/{list_name} is missing", UCF101_LAYOUT)
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        video = parts[0]
        class_name = video.split("/")[0]
        if class_name.lower() not in lower:
            raise DataError(
                f"{path}, line {number}: {video} is in the folder {class_name!r}, which classInd.txt does not list."
            )
        label = lower[class_name.lower()]
        if len(parts) > 1:
            if not _is_int(parts[1]) or not 1 <= int(parts[1]) <= len(classes):
                raise DataError(
                    f"{path}, line {number}: label {parts[1]!r} is outside classInd.txt's 1..{len(classes)}."
                )
            label = int(parts[1]) - 1
        records.append(VideoRecord(f"{videos_dir}/{video}", label))
    kept, missing = apply_missing(records, root, path, missing_videos, name)
    return VideoSplit(kept, classes, str(path), missing)


# --------------------------------------------------------------------------- HMDB51

_HMDB_SPLIT = re.compile(r"^(?P<cls>.+)_test_split(?P<fold>\d)\.txt$")


def hmdb51_split_files(root: Path, fold: int, name: str = "hmdb51") -> dict[str, Path]:
    folder = root / "testTrainMulti_7030_splits"
    if not folder.is_dir():
        raise layout_error(name, root, "testTrainMulti_7030_splits/ is missing", HMDB51_LAYOUT)
    files = {}
    for path in sorted(folder.iterdir()):
        match = _HMDB_SPLIT.match(path.name)
        if match and int(match["fold"]) == int(fold):
            files[match["cls"]] = path
    if not files:
        raise layout_error(
            name, root, f"testTrainMulti_7030_splits/ holds no <class>_test_split{fold}.txt", HMDB51_LAYOUT
        )
    return files


def hmdb51_split(
    root: Path,
    split: str,
    fold: int = 1,
    name: str = "hmdb51",
    videos_dir: str = "hmdb51",
    missing_videos: str = "error",
) -> VideoSplit:
    """``train``: the videos marked 1 in every class's split file; ``val``/``test``: those marked 2."""
    files = hmdb51_split_files(root, fold, name)
    classes = sorted(files)
    wanted = "1" if split == "train" else "2"
    records = []
    for label, class_name in enumerate(classes):
        path = files[class_name]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(f"{path}, line {number}: {line.strip()!r} is not `<video>.avi 0|1|2`.")
            if parts[1] == wanted:
                records.append(VideoRecord(f"{videos_dir}/{class_name}/{parts[0]}", label))
    source = str(root / "testTrainMulti_7030_splits")
    kept, missing = apply_missing(records, root, Path(source), missing_videos, name)
    return VideoSplit(kept, classes, source, missing)


def _is_int(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+", text))


def _label(text: str, where: str) -> int:
    value = int(text)
    if value < 0:
        raise DataError(f"{where}: label {value} is negative; labels are class indices from 0.")
    return value


def frame_path(root: Path, record: VideoRecord, index: int, template: str, start: int) -> Path:
    """The file of frame `index` (from 0) of a frame folder: ``template.format(start + index)``."""
    return root / record.path / template.format(start + index)


def check_frame_folders(root: Path, split: VideoSplit, template: str, start: int) -> None:
    """Every frame folder holds the frames its list line says: its last frame file exists (one stat per video)."""
    for record in split.records:
        if not record.is_frames:
            continue
        last = frame_path(root, record, record.num_frames - 1, template, start)
        if not last.is_file():
            raise DataError(short_folder_message(root, record, template, start, split.source))


def short_folder_message(root: Path, record: VideoRecord, template: str, start: int, source: str) -> str:
    folder = root / record.path
    if folder.is_file():
        return (
            f"{source} lists {record.path} as a frame folder (`<folder> <num_frames> <label>`), but it is a file. "
            "List video files as `<video> <label>`."
        )
    present = len([p for p in folder.iterdir() if p.is_file()]) if folder.is_dir() else 0
    expected = template.format(start + record.num_frames - 1)
    return (
        f"The frame folder {folder} holds {present} file(s), but {source} says it has {record.num_frames} frames "
        f"({expected} is missing). Correct num_frames in the list, re-extract the frames, or set "
        f"data.frame_template/data.frame_start to how the frames are named (now {template} from {start})."
    )
