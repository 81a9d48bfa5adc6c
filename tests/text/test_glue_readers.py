"""GLUE TSV readers on files written in the real GLUE layouts, and on the real MRPC sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from litzoo.datamodules.text_classification.glue import GLUE_TASKS, get_glue_task, read_glue_split
from litzoo.errors import ConfigError, DataError

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"


def write(folder: Path, name: str, lines: list[str], bom: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- the real MRPC sample


@pytest.fixture
def mrpc_root() -> Path:
    root = FIXTURES / "real" / "MRPC"
    if not (root / "train.tsv").is_file():
        pytest.skip("real MRPC sample not available")
    return root


def test_real_mrpc_sample(mrpc_root: Path) -> None:
    train = read_glue_split(mrpc_root, "mrpc", "train")
    assert len(train) == 6
    assert [example.label for example in train] == [1, 0, 0, 1, 0, 1]
    first = train[0]
    assert (
        first.text_a
        == "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy ."
    )
    # A leading, unbalanced quote must survive: GLUE files are not CSV-quoted.
    assert first.text_b == '" The foodservice pie business does not fit our long-term growth strategy .'
    assert train.label_names == ("0", "1")
    assert train.is_pair and not train.is_regression and train.num_labels == 2
    dev = read_glue_split(mrpc_root, "mrpc", "dev")
    assert len(dev) == 6 and dev.has_labels


# ----------------------------------------------------------------------------- every task's layout

COLA_ROWS = [
    "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.",
    "gj04\t1\t\tOne more pseudo generalization and I'm giving up.",
    "gj04\t0\t*\tThey drank the pub.",
]
SST2_ROWS = [
    "sentence\tlabel",
    "hide new secretions from the parental units \t0",
    "that loves its characters and communicates something rather beautiful about human nature \t1",
]
QQP_ROWS = [
    "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
    "133273\t213221\t213222\tHow is the life of a math student? Could you describe your own experiences?"
    "\tWhich level of prepration is enough for the exam jlpt5?\t0",
    "402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your horniness?\t1",
]
STSB_ROWS = [
    "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
    "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking off.\t5.000",
    "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man is playing a large flute.\tA man is playing a flute.\t3.800",
]
MNLI_TRAIN_ROWS = [
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse"
    "\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label",
    "0\t31193\t31193n\tgovernment\t( ( Conceptually ...\t( ( ( Product ...\t(ROOT ...)\t(ROOT ...)"
    "\tConceptually cream skimming has two basic dimensions - product and geography."
    "\tProduct and geography are what make cream skimming work. \tneutral\tneutral",
]
MNLI_DEV_ROWS = [
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse"
    "\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label",
    "0\t63735\t63735n\tslate\t( ... )\t( ... )\t(ROOT ...)\t(ROOT ...)\tThe new rights are nice enough"
    "\tEveryone really likes the newest benefits \tneutral\tentailment\tneutral\tneutral\tneutral\tneutral",
    "1\t91383\t91383c\tgovernment\t( ... )\t( ... )\t(ROOT ...)\t(ROOT ...)"
    "\tThis site includes a list of all award winners and a searchable database of Government Executive articles."
    "\tThe Government Executive articles housed on the website are not able to be searched ."
    "\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction",
]
QNLI_ROWS = [
    "index\tquestion\tsentence\tlabel",
    "0\tWhen did the third Digimon series begin?\tUnlike the two seasons before it, Digimon Tamers takes a darker"
    " approach.\tnot_entailment",
    "1\tWhich missile batteries often have individual launchers several kilometres from one another?"
    "\tWhen MANPADS is operated by specialists, batteries may have several dozen teams.\tnot_entailment",
    "2\tWhat two things does Popper argue Tarski's theory involves in an evaluation of truth?"
    "\tHe bases this interpretation on the fact that examples such as the one described above refer to two"
    " things: assertions and the facts to which they refer.\tentailment",
]
RTE_ROWS = [
    "index\tsentence1\tsentence2\tlabel",
    "0\tNo Weapons of Mass Destruction Found in Iraq Yet.\tWeapons of Mass Destruction Found in Iraq."
    "\tnot_entailment",
    "1\tA place of sorrow, after Pope John Paul II died, became a place of celebration.\tPope Benedict XVI is"
    " the new leader of the Roman Catholic Church.\tentailment",
]


def test_cola_has_no_header(tmp_path: Path) -> None:
    write(tmp_path, "train.tsv", COLA_ROWS)
    split = read_glue_split(tmp_path, "CoLA", "train")
    assert [e.label for e in split] == [1, 1, 0]
    assert split[2].text_a == "They drank the pub."
    assert split[0].text_b is None
    assert split[0].guid == "train-1"  # the first line is data, not a header


def test_cola_test_file_has_a_header(tmp_path: Path) -> None:
    write(tmp_path, "test.tsv", ["index\tsentence", "0\tBill whistled past the house.", "1\tThe car honked."])
    split = read_glue_split(tmp_path, "cola", "test")
    assert [e.text_a for e in split] == ["Bill whistled past the house.", "The car honked."]
    assert [e.label for e in split] == [None, None] and not split.has_labels


def test_sst2_strips_trailing_space(tmp_path: Path) -> None:
    write(tmp_path, "dev.tsv", SST2_ROWS)
    split = read_glue_split(tmp_path, "sst2", "dev")
    assert [(e.text_a, e.label) for e in split] == [
        ("hide new secretions from the parental units", 0),
        ("that loves its characters and communicates something rather beautiful about human nature", 1),
    ]
    assert split[0].guid == "dev-2"


def test_qqp_pairs(tmp_path: Path) -> None:
    write(tmp_path, "train.tsv", QQP_ROWS)
    split = read_glue_split(tmp_path, "qqp", "train")
    assert [e.label for e in split] == [0, 1]
    assert split[1].text_a == "How do I control my horny emotions?"
    assert split[1].text_b == "How do you control your horniness?"


def test_stsb_is_regression(tmp_path: Path) -> None:
    write(tmp_path, "train.tsv", STSB_ROWS)
    split = read_glue_split(tmp_path, "STS-B", "train")
    assert split.is_regression and split.num_labels == 1 and split.label_names is None
    assert [e.label for e in split] == [5.0, 3.8]
    assert split[0].text_b == "An air plane is taking off."


def test_mnli_matched_and_mismatched(tmp_path: Path) -> None:
    write(tmp_path, "train.tsv", MNLI_TRAIN_ROWS)
    write(tmp_path, "dev_matched.tsv", MNLI_DEV_ROWS)
    write(tmp_path, "dev_mismatched.tsv", MNLI_DEV_ROWS[:2])
    task = get_glue_task("mnli")
    assert task.eval_splits == ("dev_matched", "dev_mismatched")
    train = read_glue_split(tmp_path, task, "train")
    assert train[0].label == task.label_names.index("neutral") == 2
    assert train[0].text_b == "Product and geography are what make cream skimming work."
    matched = read_glue_split(tmp_path, task, "dev_matched")
    # gold_label, not label1, decides (row 1: label1=neutral, gold=neutral; row 2: contradiction)
    assert [e.label for e in matched] == [2, 0]
    assert len(read_glue_split(tmp_path, task, "dev_mismatched")) == 1
    with pytest.raises(ConfigError, match="dev_matched"):
        read_glue_split(tmp_path, task, "dev")


def test_qnli_and_rte_text_labels(tmp_path: Path) -> None:
    write(tmp_path / "QNLI", "train.tsv", QNLI_ROWS)
    write(tmp_path / "RTE", "train.tsv", RTE_ROWS)
    qnli = read_glue_split(tmp_path / "QNLI", "qnli", "train")
    assert [e.label for e in qnli] == [1, 1, 0]
    assert qnli.label_names == ("entailment", "not_entailment")
    assert qnli[2].text_a.startswith("What two things does Popper argue Tarski's theory")
    rte = read_glue_split(tmp_path / "RTE", "rte", "train")
    assert [e.label for e in rte] == [1, 0]


def test_every_task_is_described() -> None:
    assert sorted(GLUE_TASKS) == ["cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb", "wnli"]
    assert get_glue_task("STS_B").metrics == ("pearson", "spearman")
    assert get_glue_task("cola").metrics == ("mcc",)
    assert set(get_glue_task("mrpc").metrics) == set(get_glue_task("qqp").metrics) == {"f1", "accuracy"}
    with pytest.raises(ConfigError, match="Known tasks"):
        get_glue_task("squad")


def test_byte_order_mark_in_header(tmp_path: Path) -> None:
    write(tmp_path, "train.tsv", [MRPC_HEADER, "1\t1\t2\tA b .\tA c ."], bom=True)
    assert read_glue_split(tmp_path, "mrpc", "train")[0].text_b == "A c ."


# ----------------------------------------------------------------------------- bad input


def test_missing_file_shows_expected_layout(tmp_path: Path) -> None:
    write(tmp_path, "dev.tsv", SST2_ROWS)
    with pytest.raises(DataError) as error:
        read_glue_split(tmp_path, "sst2", "train")
    message = str(error.value)
    assert "train.tsv not found" in message and "['dev.tsv']" in message and "SST-2/" in message


def test_header_mismatch_names_file_and_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "train.tsv", ["text\tlabel", "good\t1"])
    with pytest.raises(DataError) as error:
        read_glue_split(tmp_path, "sst2", "train")
    message = str(error.value)
    assert (
        str(path) in message and "['sentence']" in message and "columns found: ['text', 'label']" in message
    )


def test_label_outside_label_set(tmp_path: Path) -> None:
    path = write(tmp_path, "train.tsv", ["sentence\tlabel", "fine\t1", "odd\t2"])
    with pytest.raises(DataError, match=rf"{path}, line 3: label '2'.*'0', '1'"):
        read_glue_split(tmp_path, "sst2", "train")


def test_empty_text(tmp_path: Path) -> None:
    path = write(tmp_path, "train.tsv", [MRPC_HEADER, "1\t1\t2\tA .\t  "])
    with pytest.raises(DataError, match=rf"{path}, line 2: empty text in column '#2 String'"):
        read_glue_split(tmp_path, "mrpc", "train")


def test_wrong_field_count_and_blank_line(tmp_path: Path) -> None:
    write(tmp_path, "train.tsv", ["sentence\tlabel", "a\tb\t1"])
    with pytest.raises(DataError, match="line 2: 3 tab-separated field"):
        read_glue_split(tmp_path, "sst2", "train")
    write(tmp_path, "train.tsv", ["sentence\tlabel", "good\t1", "", "bad\t0"])
    with pytest.raises(DataError, match="line 3: empty line"):
        read_glue_split(tmp_path, "sst2", "train")
    # A trailing blank line is harmless.
    write(tmp_path, "train.tsv", ["sentence\tlabel", "good\t1", "", ""])
    assert len(read_glue_split(tmp_path, "sst2", "train")) == 1


def test_cola_with_a_header_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "train.tsv", ["sentence\tlabel", "They drank the pub.\t0"])
    with pytest.raises(DataError, match="no header and exactly 4 columns"):
        read_glue_split(tmp_path, "cola", "train")


def test_bad_score(tmp_path: Path) -> None:
    rows = STSB_ROWS[:2] + [STSB_ROWS[2].replace("3.800", "high")]
    write(tmp_path, "train.tsv", rows)
    with pytest.raises(DataError, match="line 3: score 'high'"):
        read_glue_split(tmp_path, "stsb", "train")


def test_skip_mode_counts_dropped_rows(tmp_path: Path) -> None:
    write(tmp_path, "train.tsv", ["sentence\tlabel", "good\t1", "odd\t7", "\t0", "also good\t0"])
    split = read_glue_split(tmp_path, "sst2", "train", on_invalid="skip")
    assert [e.text_a for e in split] == ["good", "also good"]
    assert len(split.skipped) == 2
    assert "line 3" in split.skipped[0] and "line 4" in split.skipped[1]
    with pytest.raises(DataError, match="on_invalid"):
        read_glue_split(tmp_path, "sst2", "train", on_invalid="ignore")
