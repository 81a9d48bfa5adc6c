"""Unusable samples: `data.bad_samples=error` stops naming the sample, `skip` leaves it out and lists it."""

from __future__ import annotations

import pickle

import pytest
from conftest import TINY, run_in_process
from test_classification_data import write_cifar, write_imagefolder

SMALL = [o for o in TINY if not o.startswith(("data.image_size", "data.batch_size"))] + [
    "data.image_size=16",
    "data.num_workers=0",
]


@pytest.fixture
def folder_with_a_broken_image(tmp_path):
    write_imagefolder(
        tmp_path / "images",
        {
            "train": {"ant": [("RGB", (20, 20))] * 4, "bee": [("RGB", (20, 20))] * 4},
            "val": {"ant": [("RGB", (20, 20))] * 2, "bee": [("RGB", (20, 20))] * 2},
        },
    )
    broken = tmp_path / "images" / "train" / "bee" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 this is not a jpeg")
    return tmp_path / "images", broken


def test_undecodable_image_stops_the_run_naming_the_file(folder_with_a_broken_image, tmp_path, capsys):
    root, broken = folder_with_a_broken_image
    code, record = run_in_process(
        [*SMALL, "data=imagefolder", f"data.root={root}", "data.batch_size=9"], tmp_path / "run"
    )
    assert code == 3 and record["status"] == "failed"
    assert f"Cannot decode image {broken}" in record["error"]
    assert f"Cannot decode image {broken}" in capsys.readouterr().err


def test_undecodable_image_is_skipped_and_listed(folder_with_a_broken_image, tmp_path):
    root, broken = folder_with_a_broken_image
    code, record = run_in_process(
        [*SMALL, "data=imagefolder", f"data.root={root}", "data.batch_size=9", "data.bad_samples=skip"],
        tmp_path / "run",
    )
    assert code == 0 and record["status"] == "completed"
    assert record["bad_samples"]["count"] == 1
    (entry,) = record["bad_samples"]["samples"]
    assert entry["split"] == "train" and str(broken) in entry["reason"]


def test_label_outside_the_label_set(tmp_path):
    write_cifar(tmp_path / "cifar", per_batch=10, test=8)
    batch = tmp_path / "cifar" / "cifar-10-batches-py" / "data_batch_2"
    with open(batch, "rb") as f:
        content = pickle.load(f, encoding="latin1")
    content["labels"][3] = 12
    with open(batch, "wb") as f:
        pickle.dump(content, f, protocol=2)
    base = [
        *(o for o in SMALL if not o.startswith("data.image_size")),
        "data=cifar10",
        f"data.root={tmp_path / 'cifar'}",
        "data.val_size=10",
        "data.batch_size=50",
        "data.eval_batch_size=50",
    ]
    code, record = run_in_process(base, tmp_path / "strict")
    assert code == 3
    assert f"{batch} image 3: label 12 is outside the label set 0..9" in record["error"]
    code, record = run_in_process([*base, "data.bad_samples=skip"], tmp_path / "lenient")
    assert code == 0 and record["bad_samples"]["count"] == 1
    assert "image 3: label 12" in record["bad_samples"]["samples"][0]["reason"]
