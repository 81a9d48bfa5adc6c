"""Dependency parsing side by side: litzoo's biaffine parser vs UDPipe 1 on the same treebank split,
and MST/Eisner decoding time per sentence against sentence length.

    python benchmarks/bench_dependency_parsing.py                      # the embedded toy treebank
    python benchmarks/bench_dependency_parsing.py --root /data/UD_English-EWT --epochs 20
    python benchmarks/bench_dependency_parsing.py --decoding-only

1. Accuracy and speed. Both parsers train on the train file (UDPipe's parser with its dev file as
   held-out data, litzoo validating on dev and testing its best epoch) and parse the test file from
   the same input columns: word forms and the file's UPOS/XPOS tags (UDPipe's parser always reads
   the tag columns; litzoo runs with `model.features=[chars,upos,xpos]`). Both outputs are scored by
   the same CoNLL 2018 scorer (`litzoo.metrics.dependency_parsing.score_files`); parsing speed is
   sentences per second on the test file, one thread, after a warm-up pass.
   UDPipe 1: `pip install ufal.udpipe` (its parser trains offline from CoNLL-U).
2. Decoding: batches of 32 random score matrices per length; Chu-Liu/Edmonds runs per sentence
   (numpy), Eisner batched (torch); milliseconds per sentence.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def split_files(root: Path | None, data_dir: Path) -> dict[str, Path]:
    from litzoo.datamodules.dependency_parsing.layouts import find_treebank_files
    from litzoo.datamodules.dependency_parsing.treebank import ensure_toy_treebank

    if root is None:
        root = ensure_toy_treebank(data_dir / "toy_treebank")
    return find_treebank_files(root, {})


def train_litzoo(files: dict[str, Path], run_dir: Path, epochs: int, model: str, extra: list[str]) -> dict:
    args = [
        sys.executable,
        str(ROOT / "train.py"),
        "task=dependency_parsing",
        f"model={model}",
        "data=conllu",
        f"data.train_file={files['train']}",
        f"data.val_file={files['val']}",
        f"data.test_file={files['test']}",
        f"trainer.max_epochs={epochs}",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if result.returncode != 0:
        raise SystemExit(f"litzoo training failed:\n{result.stderr[-3000:]}")
    return {"train_s": time.perf_counter() - start, "run_dir": run_dir}


def parse_litzoo(run_dir: Path, test_file: Path, output: Path) -> float:
    import torch

    import litzoo
    from litzoo.text.conllu import format_sentence, read_treebank, write_treebank

    torch.set_num_threads(1)
    parser = litzoo.load(str(run_dir))
    sentences = read_treebank(test_file, require_tree=False)
    parser.parse(sentences[:64])  # warm-up
    start = time.perf_counter()
    trees = parser.parse(sentences, batch_size=32)
    seconds = time.perf_counter() - start
    write_treebank(output, (format_sentence(s, h, d) for s, (h, d) in zip(sentences, trees)))
    return len(sentences) / seconds


def udpipe_sentences(path: Path):
    import ufal.udpipe as udpipe

    reader = udpipe.InputFormat.newConlluInputFormat()
    reader.setText(path.read_text(encoding="utf-8"))
    sentences, error = udpipe.Sentences(), udpipe.ProcessingError()
    sentence = udpipe.Sentence()
    while reader.nextSentence(sentence, error):
        sentences.push_back(sentence)
        sentence = udpipe.Sentence()
    if error.occurred():
        raise SystemExit(f"UDPipe cannot read {path}: {error.message}")
    return sentences


def run_udpipe(files: dict[str, Path], output: Path, iterations: int) -> dict:
    import ufal.udpipe as udpipe

    train, heldout = udpipe_sentences(files["train"]), udpipe_sentences(files["val"])
    error = udpipe.ProcessingError()
    start = time.perf_counter()
    model_bytes = udpipe.Trainer.train(
        "morphodita_parsito",
        train,
        heldout,
        "none",
        "none",
        f"iterations={iterations};transition_system=swap;run=1",
        error,
    )
    train_s = time.perf_counter() - start
    if error.occurred():
        raise SystemExit(f"UDPipe training failed: {error.message}")
    with tempfile.NamedTemporaryFile(suffix=".udpipe", delete=False) as f:
        f.write(model_bytes.encode("latin1") if isinstance(model_bytes, str) else model_bytes)
    model = udpipe.Model.load(f.name)
    pipeline = udpipe.Pipeline(model, "conllu", udpipe.Pipeline.NONE, udpipe.Pipeline.DEFAULT, "conllu")
    text = files["test"].read_text(encoding="utf-8")
    pipeline.process(text[: len(text) // 20], error)  # warm-up
    start = time.perf_counter()
    parsed = pipeline.process(text, error)
    parse_s = time.perf_counter() - start
    if error.occurred():
        raise SystemExit(f"UDPipe parsing failed: {error.message}")
    output.write_text(parsed, encoding="utf-8")
    count = sum(1 for block in text.split("\n\n") if block.strip())
    return {"train_s": train_s, "sentences_per_s": count / parse_s}


def bench_decoding(lengths: list[int], batch: int = 32, repeats: int = 3) -> list[dict]:
    import torch

    from litzoo.text.dependency_trees import decode_heads

    torch.set_num_threads(1)
    rows = []
    for n in lengths:
        scores = torch.randn(batch, n + 1, n + 1, generator=torch.Generator().manual_seed(n))
        sizes = torch.full((batch,), n)
        row: dict = {"length": n}
        for decoder in ("mst", "eisner"):
            decode_heads(scores[:2], sizes[:2], decoder)
            best = min(_timed(decode_heads, scores, sizes, decoder) for _ in range(repeats))
            row[f"{decoder}_ms_per_sentence"] = 1000 * best / batch
        rows.append(row)
    return rows


def _run_seconds(run_dir: Path) -> float:
    from datetime import datetime

    record = json.loads((run_dir / "run.json").read_text())
    started, ended = (datetime.fromisoformat(record[k]) for k in ("started_at", "ended_at"))
    return (ended - started).total_seconds()


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=None, help="a UD treebank folder (default: the toy treebank)"
    )
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "litzoo-bench")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--model", default="biaffine_small")
    parser.add_argument("--udpipe-iterations", type=int, default=10)
    parser.add_argument(
        "--litzoo-run",
        type=Path,
        default=None,
        help="a finished litzoo run directory on this treebank to parse with (skips its training)",
    )
    parser.add_argument("--decoding-only", action="store_true")
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 40, 80])
    args = parser.parse_args()
    report: dict = {}
    if not args.decoding_only:
        from litzoo.metrics.dependency_parsing import score_files

        files = split_files(args.root, args.data_dir)
        work = Path(tempfile.mkdtemp(prefix="bench-parsing-"))
        if args.litzoo_run is None:
            litzoo_run = train_litzoo(
                files, work / "litzoo", args.epochs, args.model, ["model.features=[chars,upos,xpos]"]
            )
        else:
            litzoo_run = {"train_s": _run_seconds(args.litzoo_run), "run_dir": args.litzoo_run}
        litzoo_out = work / "litzoo.conllu"
        speed = parse_litzoo(litzoo_run["run_dir"], files["test"], litzoo_out)
        ours = score_files(str(files["test"]), str(litzoo_out))
        report["litzoo"] = {
            "model": args.model,
            "epochs": args.epochs,
            "train_s": round(litzoo_run["train_s"], 1),
            "sentences_per_s": round(speed, 1),
            "uas": round(100 * ours.uas, 2),
            "las": round(100 * ours.las, 2),
        }
        try:
            udpipe_out = work / "udpipe.conllu"
            theirs_run = run_udpipe(files, udpipe_out, args.udpipe_iterations)
            theirs = score_files(str(files["test"]), str(udpipe_out))
            report["udpipe1"] = {
                "iterations": args.udpipe_iterations,
                "train_s": round(theirs_run["train_s"], 1),
                "sentences_per_s": round(theirs_run["sentences_per_s"], 1),
                "uas": round(100 * theirs.uas, 2),
                "las": round(100 * theirs.las, 2),
            }
        except ImportError:
            report["udpipe1"] = "not installed (pip install ufal.udpipe)"
        report["treebank"] = {split: str(path) for split, path in files.items()}
    report["decoding"] = bench_decoding(args.lengths)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
