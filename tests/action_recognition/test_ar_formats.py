"""The list-file and official split-file readers on small files written in the real formats, and the layout
checks that run them before torch is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from litzoo.datamodules.action_recognition import formats, layouts
from litzoo.datamodules.action_recognition.formats import VideoRecord
from litzoo.errors import ConfigError, DataError


def touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def frame_folder(root: Path, name: str, frames: int) -> None:
    for index in range(1, frames + 1):
        touch(root / name / f"img_{index:05d}.jpg")


def test_gluoncv_frame_folder_lists_with_classes_txt(tmp_path):
    (tmp_path / "classes.txt").write_text("jump\nrun\nwave\n")
    (tmp_path / "train.txt").write_text("rawframes/jump/v01 12 0\nrawframes/wave/v 02 5 2\n\n")
    (tmp_path / "val.txt").write_text("rawframes/run/v03 7 1\n")
    for name, count in (("rawframes/jump/v01", 12), ("rawframes/wave/v 02", 5), ("rawframes/run/v03", 7)):
        frame_folder(tmp_path, name, count)
    train = formats.list_split(tmp_path, "train")
    assert train.records == [
        VideoRecord("rawframes/jump/v01", 0, 12),
        VideoRecord("rawframes/wave/v 02", 2, 5),
    ]
    assert train.class_names == ["jump", "run", "wave"]
    assert formats.list_split(tmp_path, "val").records == [VideoRecord("rawframes/run/v03", 1, 7)]
    assert formats.list_split(tmp_path, "test") is None  # no test.txt: test uses val
    layouts.check_video_list({"name": "video_list", "root": str(tmp_path)})


def test_video_lists_without_classes_txt_number_the_classes_of_the_train_list(tmp_path):
    (tmp_path / "train.txt").write_text("videos/a.mp4 0\nvideos/b.avi 3\n")
    (tmp_path / "val.txt").write_text("videos/c.mp4 2\n")
    for name in ("a.mp4", "b.avi", "c.mp4"):
        touch(tmp_path / "videos" / name)
    split = formats.list_split(tmp_path, "train")
    assert split.records == [VideoRecord("videos/a.mp4", 0), VideoRecord("videos/b.avi", 3)]
    assert split.class_names == ["0", "1", "2", "3"] and not split.records[0].is_frames


def test_a_label_outside_the_class_list_names_file_video_and_fix(tmp_path):
    (tmp_path / "classes.txt").write_text("jump\nrun\n")
    (tmp_path / "train.txt").write_text("videos/a.mp4 0\nvideos/b.mp4 2\n")
    with pytest.raises(
        DataError, match=r"train.txt: videos/b.mp4 has label 2, but .*classes.txt lists 2 classes"
    ):
        formats.list_split(tmp_path, "train")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("videos/a.mp4 zero\n", r"line 1: 'videos/a.mp4 zero' is not a list-file line"),
        ("videos/a.mp4 -1\n", "label -1 is negative"),
        ("rawframes/a 0 1\n", "listed with 0 frames"),
        ("rawframes/a 10 1\nvideos/b.mp4 0\n", "mixes frame-folder lines"),
        ("\n\n", "lists no video"),
    ],
)
def test_malformed_list_files_name_the_line(tmp_path, content, message):
    (tmp_path / "train.txt").write_text(content)
    with pytest.raises(DataError, match=message):
        formats.read_list_file(tmp_path / "train.txt")


def test_listed_videos_that_are_missing_stop_the_run_or_are_skipped(tmp_path):
    (tmp_path / "train.txt").write_text("videos/a.mp4 0\nvideos/gone.mp4 1\nvideos/b.mp4 1\n")
    touch(tmp_path / "videos" / "a.mp4")
    touch(tmp_path / "videos" / "b.mp4")
    with pytest.raises(
        DataError, match=r"names 1 video\(s\) that are not under .*gone.mp4.*data.missing_videos=skip"
    ):
        formats.list_split(tmp_path, "train")
    kept = formats.list_split(tmp_path, "train", missing_videos="skip")
    assert [r.path for r in kept.records] == ["videos/a.mp4", "videos/b.mp4"] and kept.missing == [
        "videos/gone.mp4"
    ]
    with pytest.raises(ConfigError, match="data.missing_videos='drop'"):
        formats.check_missing_policy("drop")


def test_a_frame_folder_with_fewer_frames_than_listed_is_named_with_the_count(tmp_path):
    (tmp_path / "train.txt").write_text("rawframes/a 10 0\n")
    (tmp_path / "val.txt").write_text("rawframes/a 10 0\n")
    frame_folder(tmp_path, "rawframes/a", 8)
    with pytest.raises(
        DataError,
        match=r"rawframes/a holds 8 file\(s\), but .*train.txt says it has 10 frames \(img_00010.jpg is missing\)",
    ):
        layouts.check_video_list({"name": "video_list", "root": str(tmp_path)})


def test_kinetics_csv_and_folders(tmp_path):
    header = "label,youtube_id,time_start,time_end,split,is_cc\n"
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "train.csv").write_text(
        header + "abseiling,0347ZoDXyP0,102,112,train,0\nair drumming,--nQbRBEz2s,104,114,train,0\n"
    )
    (tmp_path / "annotations" / "val.csv").write_text(header + "air drumming,--33Lscn6sk,4,14,val,0\n")
    touch(tmp_path / "train" / "abseiling" / "0347ZoDXyP0_000102_000112.mp4")
    touch(
        tmp_path / "train" / "air_drumming" / "--nQbRBEz2s_000104_000114.mp4"
    )  # underscores, as some mirrors
    touch(tmp_path / "val" / "air drumming" / "--33Lscn6sk_000004_000014.mp4")
    train = formats.kinetics_split(tmp_path, "train")
    assert train.class_names == ["abseiling", "air drumming"]
    assert train.records == [
        VideoRecord("train/abseiling/0347ZoDXyP0_000102_000112.mp4", 0),
        VideoRecord("train/air_drumming/--nQbRBEz2s_000104_000114.mp4", 1),
    ]
    assert formats.kinetics_split(tmp_path, "val").records == [
        VideoRecord("val/air drumming/--33Lscn6sk_000004_000014.mp4", 1)
    ]
    layouts.check_kinetics({"name": "kinetics", "root": str(tmp_path)})


def test_ucf101_official_split_files(tmp_path):
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n")
    (lists / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nHandstandPushups/v_HandStandPushups_g08_c01.avi 2\r\n"
    )
    (lists / "testlist01.txt").write_text("HandStandPushups/v_HandStandPushups_g01_c01.avi\n")
    for video in (
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
        "HandstandPushups/v_HandStandPushups_g08_c01.avi",
        "HandStandPushups/v_HandStandPushups_g01_c01.avi",
    ):
        touch(tmp_path / "UCF-101" / video)
    train = formats.ucf101_split(tmp_path, "train")
    assert train.records == [
        VideoRecord("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0),
        VideoRecord("UCF-101/HandstandPushups/v_HandStandPushups_g08_c01.avi", 1),
    ]
    # testlist has no labels: the class folder decides, case-insensitively (UCF101's HandStand/Handstand)
    assert formats.ucf101_split(tmp_path, "test").records == [
        VideoRecord("UCF-101/HandStandPushups/v_HandStandPushups_g01_c01.avi", 1)
    ]
    (lists / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 3\n")
    with pytest.raises(DataError, match=r"trainlist01.txt, line 1: label '3' is outside classInd.txt's 1..2"):
        formats.ucf101_split(tmp_path, "train")


def test_hmdb51_official_split_files(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text(
        "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \nb.avi 2 \nc.avi 0 \n"
    )
    (splits / "cartwheel_test_split1.txt").write_text("d.avi 2 \ne.avi 1 \n")
    (splits / "cartwheel_test_split2.txt").write_text("d.avi 1 \ne.avi 2 \n")
    for video in (
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi",
        "brush_hair/b.avi",
        "cartwheel/d.avi",
        "cartwheel/e.avi",
    ):
        touch(tmp_path / "hmdb51" / video)
    train = formats.hmdb51_split(tmp_path, "train")
    assert train.class_names == ["brush_hair", "cartwheel"]
    assert train.records == [
        VideoRecord("hmdb51/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 0),
        VideoRecord("hmdb51/cartwheel/e.avi", 1),
    ]
    assert [r.path for r in formats.hmdb51_split(tmp_path, "test").records] == [
        "hmdb51/brush_hair/b.avi",
        "hmdb51/cartwheel/d.avi",
    ]
    assert [r.path for r in formats.hmdb51_split(tmp_path, "train", fold=2).records] == [
        "hmdb51/cartwheel/d.avi"
    ]


def test_a_split_naming_missing_videos_fails_on_the_command_line_before_torch_is_imported(tmp_path):
    (tmp_path / "train.txt").write_text("videos/a.mp4 0\n")
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            str(ROOT / "train.py"),
            "task=action_recognition",
            "data=video_list",
            f"data.root={tmp_path}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "omegaconf" in imported and not imported & {"torch", "lightning", "timm", "torchvision", "av"}
    shown = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("import time:"))
    assert "train.txt names 1 video(s) that are not under" in shown and "videos/a.mp4" in shown
    assert "Traceback" not in shown + result.stdout
