"""The Python API: `litzoo.get_model` and the one-line datasets of `litzoo.data`, each checked
against an independent reading of a small real-format file (fixtures or generated defaults)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

import litzoo
import litzoo.data
from litzoo.errors import ConfigError


def test_import_litzoo_data_stays_light():
    """The facade is imported on first use of a dataset name, not by `import litzoo.data`."""
    code = (
        "import sys, litzoo, litzoo.data; heavy = [m for m in ('torch', 'litzoo.datasets', 'litzoo.datamodules') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'NotADataset'"):
        litzoo.data.NotADataset  # noqa: B018


def test_squad_one_liner_returns_the_files_questions(tmp_path):
    from litzoo.datamodules.question_answering.toy_squad import ensure_toy_squad

    root = ensure_toy_squad(
        tmp_path / "squad", version="2.0", num_train=12, num_dev=6, seed=0, filler_rate=0.3
    )
    train = litzoo.data.SQuAD(root, split="train", version="2.0")
    dev = litzoo.data.SQuAD(root, split="dev", version="2.0")
    raw = json.loads((root / "train-v2.0.json").read_text())
    qas = [
        (
            q["id"],
            q["question"],
            p["context"],
            q.get("is_impossible", False),
            [a["text"] for a in q["answers"]],
        )
        for article in raw["data"]
        for p in article["paragraphs"]
        for q in p["qas"]
    ]
    assert [
        (e.qid, e.question, e.context, e.is_impossible, [a.text for a in e.answers]) for e in train
    ] == qas
    assert any(e.is_impossible for e in train)
    dev_raw = json.loads((root / "dev-v2.0.json").read_text())
    assert [e.question for e in dev] == [
        q["question"] for a in dev_raw["data"] for p in a["paragraphs"] for q in p["qas"]
    ]


def test_wikitext2_and_iwslt_one_liners_read_the_lines(tmp_path):
    wt = tmp_path / "wikitext-2"
    wt.mkdir()
    for split in ("train", "valid", "test"):
        (wt / f"wiki.{split}.tokens").write_text(f" = {split} = \n\n the cat sat on the mat . \n")
    assert litzoo.data.WikiText2(tmp_path, split="test") == [" = test = ", "", " the cat sat on the mat . "]
    iwslt = tmp_path / "iwslt15"
    iwslt.mkdir()
    pairs = {
        "train": [("Hello .", "Xin chào ."), ("Thank you .", "Cảm ơn .")],
        "tst2012": [("Yes .", "Vâng .")],
        "tst2013": [("No .", "Không .")],
    }
    for prefix, rows in pairs.items():
        (iwslt / f"{prefix}.en").write_text("".join(f"{s}\n" for s, _ in rows))
        (iwslt / f"{prefix}.vi").write_text("".join(f"{t}\n" for _, t in rows), encoding="utf-8")
    assert litzoo.data.IWSLT2015(iwslt, "train", src_lang="en", tgt_lang="vi") == pairs["train"]
    assert litzoo.data.IWSLT2015(iwslt, "test", src_lang="en", tgt_lang="vi") == pairs["tst2013"]
    assert litzoo.data.IWSLT2015(iwslt, "valid", src_lang="en", tgt_lang="vi") == pairs["tst2012"]


def test_coco_one_liner_reads_the_real_annotations(fixtures_dir, tmp_path):
    raw = json.loads((fixtures_dir / "real/COCO/instances_val2017.json").read_text())
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/instances_val2017.json").write_text(json.dumps(raw))
    (tmp_path / "val2017").mkdir()
    image = raw["images"][0]
    Image.new("RGB", (image["width"], image["height"]), (90, 60, 30)).save(
        tmp_path / "val2017" / image["file_name"]
    )
    coco = litzoo.data.COCODetection(tmp_path, "val")
    picture, target = coco[0]
    assert tuple(picture.shape) == (3, image["height"], image["width"])
    annotations = [a for a in raw["annotations"] if not a.get("iscrowd")]
    expected = sorted([x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in annotations))
    assert len(target["boxes"]) == 6
    np.testing.assert_allclose(sorted(target["boxes"].tolist()), expected, rtol=0, atol=1e-4)
    names = {c["id"]: c["name"] for c in raw["categories"]}
    got = sorted(coco.class_names[int(label)] for label in target["labels"])
    assert got == sorted(names[a["category_id"]] for a in annotations)


def test_voc_segmentation_one_liner_reads_palette_masks(tmp_path):
    base = tmp_path / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / folder).mkdir(parents=True)
    labels = np.zeros((12, 16), np.uint8)
    labels[2:6, 3:9] = 15  # person
    labels[0, :] = 255  # the void border
    mask = Image.fromarray(labels, mode="P")
    mask.putpalette([0, 0, 0, 128, 0, 0] * 128)
    mask.save(base / "SegmentationClass/2007_000032.png")
    Image.new("RGB", (16, 12), (10, 20, 30)).save(base / "JPEGImages/2007_000032.jpg")
    (base / "ImageSets/Segmentation/train.txt").write_text("2007_000032\n")
    voc = litzoo.data.VOCSegmentation(tmp_path, "train")
    image, target = voc[0]
    assert len(voc) == 1 and tuple(image.shape) == (3, 12, 16)
    assert np.array_equal(target.numpy(), np.asarray(Image.open(base / "SegmentationClass/2007_000032.png")))


def test_glue_and_conllu_one_liners_read_the_real_samples(fixtures_dir):
    mrpc = litzoo.data.MRPC(fixtures_dir / "real/MRPC", "train")
    with open(fixtures_dir / "real/MRPC/train.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    assert [(e.text_a, e.text_b) for e in mrpc] == [(r[3], r[4]) for r in rows]
    assert [mrpc.label_names[e.label] for e in mrpc] == [r[0] for r in rows]
    sentences = litzoo.data.CoNLLU(fixtures_dir / "real/UD/en_ewt-ud-sample.conllu")
    text = (fixtures_dir / "real/UD/en_ewt-ud-sample.conllu").read_text()
    assert len(sentences) == text.count("# sent_id") == 4


def test_get_model_builds_the_registry_entry_as_training_does():
    import timm

    net = litzoo.get_model("resnet18", num_classes=7)
    reference = timm.create_model("resnet18", num_classes=7, in_chans=1)  # digits are grey: one channel
    assert [tuple(p.shape) for p in net.parameters()] == [tuple(p.shape) for p in reference.parameters()]
    assert not net.training


def test_get_model_refuses_unknown_names_and_misfits():
    with pytest.raises(ConfigError, match="Did you mean resnet18"):
        litzoo.get_model("resnet19")
    with pytest.raises(ConfigError, match="serves classification, not task=detection"):
        litzoo.get_model("resnet18", task="detection")


@pytest.mark.slow
def test_get_model_of_a_run_dir_is_its_trained_network(tmp_path):
    """A real run (train.py, the trec/textcnn tiny variant): get_model(run_dir) holds the weights of
    litzoo.load(run_dir) and predicts what the task predicts."""
    import torch
    from conftest import run_cli

    from litzoo.zoo.recipes import read_recipe, recipe_files

    run_dir = tmp_path / "run"
    recipe = read_recipe("trec/textcnn", recipe_files([ROOT / "conf"]))
    overrides = [f"experiment={recipe.name}", *recipe.tiny, "debug=limit", "trainer.max_epochs=1"]
    done = run_cli([*overrides, "callbacks.progress_bar=null", f"hydra.run.dir={run_dir}"])
    assert done.returncode == 0, done.stderr[-2000:]
    net = litzoo.get_model(run_dir)
    task = litzoo.load(run_dir)
    assert not net.training
    for (name, mine), (_, theirs) in zip(
        net.state_dict().items(), task.net.state_dict().items(), strict=True
    ):
        assert torch.equal(mine, theirs), name
    with pytest.raises(ConfigError, match="leave out num_classes"):
        litzoo.get_model(run_dir, num_classes=3)
