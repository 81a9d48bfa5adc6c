"""Datasets in one line from a local root, read by the same readers the datamodules use.

    import litzoo
    train = litzoo.data.SQuAD("/data/squad", split="train", version="2.0")   # list of SquadExample
    test = litzoo.data.WikiText2("/data/wikitext-2", split="test")          # list of lines
    pairs = litzoo.data.IWSLT2015("/data/iwslt15", "train", src_lang="en", tgt_lang="vi")
    coco = litzoo.data.COCODetection("/data/coco", "val2017")               # (image, target) dataset
    voc = litzoo.data.VOCSegmentation("/data/VOCdevkit", "train")           # (image, mask) dataset

Reached as `litzoo.data.<Name>`: `litzoo/data/__init__.py` forwards unknown attributes here
lazily (the one documented exception to "litzoo.data imports no family", checked by
tests/test_layout.py), so `import litzoo.data` stays light and the arrows of the layout hold for
everything else. Nothing here is a new reader: each function locates the files the way its
family's datamodule does and calls that datamodule's reader, so a file that trains is a file
that loads here, with the same error messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "CIFAR10",
    "COCODetection",
    "CoNLLU",
    "CoNLLX",
    "GLUE",
    "MRPC",
    "PTB",
    "RTE",
    "SQuAD",
    "SST2",
    "IWSLT2015",
    "ImageFolder",
    "ParallelText",
    "TREC",
    "VOCDetection",
    "VOCSegmentation",
    "WikiText103",
    "WikiText2",
]

_SPLIT_NAMES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "dev": "val",
    "validation": "val",
    "test": "test",
}


def _split(split: str, allowed: tuple[str, ...] = ("train", "val", "test")) -> str:
    from litzoo.errors import ConfigError

    name = _SPLIT_NAMES.get(str(split).lower())
    if name not in allowed:
        raise ConfigError(
            f"split={split!r} is not a split here; choose one of {', '.join(allowed)} (dev/valid = val)."
        )
    return name


# -- question answering ------------------------------------------------------------------------


def SQuAD(root: str | Path, split: str = "train", version: str | None = None) -> list[Any]:  # noqa: N802
    """The questions of `<root>/{train,dev}-v<version>.json` (SquadExample: qid, question, context,
    answers, is_impossible), as `data=squad` finds and reads them; `version` None: the one root holds."""
    from litzoo.datamodules.question_answering.layouts import find_squad_files
    from litzoo.datamodules.question_answering.squad import read_squad

    paths, found = find_squad_files(root, version)
    return list(read_squad(paths[_split(split)], found).examples)


# -- language models ---------------------------------------------------------------------------


def _corpus_lines(root: str | Path, names: dict[str, str], folders: tuple[str, ...], split: str) -> list[str]:
    from litzoo.datamodules.language_model.readers import find_corpus_folder, read_lines
    from litzoo.errors import DataError

    folder = find_corpus_folder(root, list(names.values()), folders)
    if folder is None:
        raise DataError(
            f"No {names['train']} in {root} (or below it in {', '.join(folders)}). Point root to the unpacked corpus."
        )
    return read_lines(folder / names[_split(split)])


def WikiText2(root: str | Path, split: str = "train", raw: bool = False) -> list[str]:  # noqa: N802
    """The lines of `wiki.<split>.tokens` (`.raw` with raw=True), as `data=wikitext2` reads them."""
    from litzoo.datamodules.language_model.readers import WIKITEXT_FOLDERS, wikitext_files

    return _corpus_lines(root, wikitext_files(raw), tuple(WIKITEXT_FOLDERS), split)


WikiText103 = WikiText2  # the same layout and reader; only the files' size differs


def PTB(root: str | Path, split: str = "train") -> list[str]:  # noqa: N802
    """The lines of Mikolov's `ptb.<split>.txt`, as `data=ptb` reads them."""
    from litzoo.datamodules.language_model.readers import PTB_FILES

    return _corpus_lines(root, PTB_FILES, ("data",), split)


# -- translation -------------------------------------------------------------------------------


def ParallelText(  # noqa: N802
    root: str | Path,
    split: str = "train",
    src_lang: str = "en",
    tgt_lang: str = "de",
    prefixes: tuple[str, str, str] = ("train", "valid", "test"),
) -> list[tuple[str, str]]:
    """(source, target) sentence pairs of `<root>/<prefix>.<lang>`, as `data=parallel_text` reads them."""
    from litzoo.datamodules.translation.layouts import split_files
    from litzoo.datamodules.translation.readers import read_parallel

    files = split_files(
        {
            "root": root,
            "src_lang": src_lang,
            "tgt_lang": tgt_lang,
            "train_prefix": prefixes[0],
            "valid_prefix": prefixes[1],
            "test_prefix": prefixes[2],
        }
    )
    text = read_parallel(*files[_split(split)])
    return list(zip(text.source, text.target, strict=True))


def IWSLT2015(
    root: str | Path, split: str = "train", src_lang: str = "en", tgt_lang: str = "vi"
) -> list[tuple[str, str]]:  # noqa: N802
    """IWSLT'15 pairs (train, tst2012 = val, tst2013 = test), as `data=iwslt15_en_vi` reads them."""
    return ParallelText(root, split, src_lang, tgt_lang, prefixes=("train", "tst2012", "tst2013"))


# -- text classification -----------------------------------------------------------------------


def GLUE(root: str | Path, task: str, split: str = "train") -> Any:  # noqa: N802
    """One split of a GLUE task folder (`train.tsv`, `dev.tsv`, ...) as a TextSplit of TextExamples."""
    from litzoo.datamodules.text_classification.glue import read_glue_split

    return read_glue_split(root, task, {"val": "dev"}.get(_SPLIT_NAMES.get(split, split), split))


def MRPC(root: str | Path, split: str = "train") -> Any:  # noqa: N802
    """GLUE MRPC (sentence pairs, paraphrase or not)."""
    return GLUE(root, "mrpc", split)


def SST2(root: str | Path, split: str = "train") -> Any:  # noqa: N802
    """GLUE SST-2 (sentences, positive or negative)."""
    return GLUE(root, "sst2", split)


def RTE(root: str | Path, split: str = "train") -> Any:  # noqa: N802
    """GLUE RTE (sentence pairs, entailment or not)."""
    return GLUE(root, "rte", split)


def TREC(root: str | Path, split: str = "train", granularity: str = "coarse") -> Any:  # noqa: N802
    """TREC question classification (`train_5500.label`, `TREC_10.label`), as `data=trec` reads it."""
    from litzoo.datamodules.text_classification.trec import read_trec_split

    return read_trec_split(root, _split(split, ("train", "test")), granularity=granularity)


# -- dependency parsing ------------------------------------------------------------------------


def CoNLLU(path: str | Path) -> list[Any]:  # noqa: N802
    """The sentences of a CoNLL-U file (UD v2), as `data=conllu` reads them."""
    from litzoo.text.conllu import read_treebank

    return read_treebank(path, "conllu")


def CoNLLX(path: str | Path) -> list[Any]:  # noqa: N802
    """The sentences of a CoNLL-X file (e.g. PTB-SD), as `data=conllx` reads them."""
    from litzoo.text.conllu import read_treebank

    return read_treebank(path, "conllx")


# -- vision ------------------------------------------------------------------------------------


def ImageFolder(root: str | Path, split: str = "train", grey: bool = False) -> Any:  # noqa: N802
    """`<root>/<split>/<class>/*` as (PIL image, class index) pairs, classes from `train/` as
    `data=imagefolder` takes them (test falls back to val when there is no test/)."""
    from functools import partial

    from litzoo.datamodules.classification.imagefolder import ClassFolder, load_image

    root = Path(root).expanduser()
    name = _split(split)
    folder = root / name if name != "test" or (root / "test").is_dir() else root / "val"
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    return ClassFolder(folder, classes, loader=partial(load_image, mode="L" if grey else "RGB"))


def CIFAR10(root: str | Path, split: str = "train") -> tuple[Any, Any]:  # noqa: N802
    """(images N x 32 x 32 x 3 uint8, labels) of the official `cifar-10-batches-py` pickles
    (train: data_batch_1..5, test: test_batch), read as `data=cifar10` reads them."""
    import numpy as np

    from litzoo.datamodules.classification.cifar10 import read_cifar_batch

    folder = Path(root).expanduser() / "cifar-10-batches-py"
    files = (
        [folder / f"data_batch_{i}" for i in range(1, 6)]
        if _split(split, ("train", "test")) == "train"
        else [folder / "test_batch"]
    )
    parts = [read_cifar_batch(f) for f in files]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def COCODetection(root: str | Path, split: str = "val2017", targets: str = "boxes") -> Any:  # noqa: N802
    """`<root>/annotations/instances_<split>.json` + `<root>/<split>/` as (image, target) pairs in
    torchvision's detection convention (targets: boxes, masks or keypoints), as `data=coco` reads them.
    `split` is COCO's folder name; "train"/"val" mean train2017/val2017."""
    from litzoo.datamodules.detection.coco import CocoDetection, check_coco_layout

    split = {"train": "train2017", "val": "val2017"}.get(split, split)
    ann_file, image_dir = check_coco_layout(root, split, targets)
    return CocoDetection(ann_file, image_dir, targets=targets)


def VOCDetection(root: str | Path, split: str = "trainval", year: str = "2007") -> Any:  # noqa: N802
    """PASCAL VOC XML boxes (`<root>/VOC<year>/Annotations`, `ImageSets/Main/<split>.txt`), as `data=voc` reads them."""
    from litzoo.datamodules.detection.voc import VOCDetection as _VOCDetection

    return _VOCDetection(root, year=year, split=split)


def VOCSegmentation(root: str | Path, split: str = "train", year: int | str = 2012) -> Any:  # noqa: N802
    """VOC segmentation pairs (JPEGImages + SegmentationClass palette PNGs, `ImageSets/Segmentation/<split>.txt`;
    `train_aug` for SBD) as (image 3 x H x W uint8, mask H x W int64, 255 = ignore), as `data=voc_seg` reads them."""
    from litzoo.datamodules.segmentation.datamodule import SegmentationDataset
    from litzoo.datamodules.segmentation.formats import VOC_CLASSES, voc_resolve_train_split, voc_split
    from litzoo.datamodules.segmentation.masks import IGNORE_INDEX, identity_map

    root = Path(root).expanduser()
    if split == "auto":  # as data=voc_seg's train_split=auto: the SBD-augmented list when present
        split = voc_resolve_train_split(root, year, split)
    label_map = identity_map(len(VOC_CLASSES), IGNORE_INDEX)
    return SegmentationDataset(voc_split(root, year, split), label_map, transforms=_unchanged, joint=False)


def _unchanged(image: Any) -> Any:
    return image
