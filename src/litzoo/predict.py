"""Predict with the model a run trained, for any task: ``python -m litzoo.predict <run_dir> <inputs...>``.

A run directory is a model (``litzoo.load(run_dir)``, like ``from_pretrained(path)``): its
checkpoint (weights and hyper-parameters, which include the evaluation preprocessing) and what
the run keeps beside it (a text run's vocabulary or tokenizer). Nothing else is read: not the
training data, not the original pretrained files, not the network. The task decides what an
input is and how it is preprocessed (``TaskModule.predict_inputs``):

- image classification: image files -> the top-k labels with their probabilities;
- detection, instance segmentation, pose: image files -> boxes (+ RLE masks, keypoints) with
  category names (top-down pose takes each image as one person's box);
- text classification: texts (pairs as ``first<TAB>second``) -> label and probability.

Command line::

    python -m litzoo.predict <run_dir> cat.png dog.jpg --top-k 3
    python -m litzoo.predict <run_dir> --file images.txt --output detections.json    # COCO results
    python -m litzoo.predict <run_dir> "a gripping , witty film ." "the plot is dull ."
    python -m litzoo.predict <run_dir> --file texts.txt --json                      # one input per line
    python -m litzoo.predict <run_dir> --question "Where was Zoë born?" --context "Zoë was born in Porto."

A task may add options of its own (``TaskModule.add_predict_arguments``; question answering:
``--question``/``--context``); ``python -m litzoo.predict <run_dir> --help`` lists the run's.

prints one line per input (``TaskModule.format_prediction``), or with ``--json`` one JSON object
per input; ``--output FILE`` also writes them all as one JSON file (detection-family tasks: the
COCO results list). Errors (no such run directory, not a checkpoint, an unreadable image, empty
input) are one paragraph on standard error and the exit code of their kind (2 config, 3 data,
4 checkpoint), without a traceback.

The checkpoint is the run's best (from ``run.json``), else ``checkpoints/last.ckpt``, else the
newest intact one (``litzoo.platform.run_dir.RunDir.checkpoint``); ``--checkpoint`` picks another.
Checkpoints load weights-only and their ``_target_``s are checked against the allowlist first.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from litzoo.errors import CheckpointError, ConfigError, DataError, LitzooError


def read_inputs(path: str | Path) -> list[str]:
    """The inputs listed in a file (``-``: standard input), one per line (an image path, a text, a
    ``first<TAB>second`` pair); a trailing newline is not an input, an empty line is an error."""
    if str(path) == "-":
        lines, name = sys.stdin.read().splitlines(), "standard input"
    else:
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(
                f"Input file {file} not found. Give a file with one input per line (or - for stdin)."
            )
        try:
            lines, name = file.read_text(encoding="utf-8").splitlines(), str(file)
        except (OSError, UnicodeDecodeError) as error:
            raise DataError(
                f"Cannot read input file {file} ({error}). It should be UTF-8 text with one input per line "
                "(the inputs themselves, e.g. images, are given by their paths)."
            ) from None
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError(
                f"{name}, line {number}: empty line. Give one input per line (remove empty lines)."
            )
    if not lines:
        raise DataError(f"{name} holds no input to predict; give one input per line.")
    return [line.strip() for line in lines]


def check_inputs(inputs: Sequence[str]) -> list[str]:
    """The command line's inputs, refusing empty ones before any model is loaded."""
    for index, item in enumerate(inputs, start=1):
        if not item.strip():
            raise DataError(f"Input {index} is empty; give an image path or a text to predict.")
    return list(inputs)


def check_run_dir(run_dir: str | Path) -> None:
    """Refuse a path that is no run directory within a second (before torch is imported)."""
    from litzoo.platform.run_dir import RunDir

    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise CheckpointError(
            f"Run directory {run.path} does not exist. Give the folder a training run wrote "
            "(outputs/<task>/<model>/<time>)."
        )
    run.config()  # a folder without .hydra/config.yaml is not a run directory: CheckpointError naming it


def check_device(device: str) -> str:
    """A device torch knows and this machine has (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ConfigError(
            f"--device {device} is not a torch device; use cpu, cuda, cuda:<index> or mps."
        ) from None
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}.get(kind)
    if available is not None and not available():
        raise ConfigError(f"--device {device}: this machine has no {kind.upper()} device; use --device cpu.")
    return device


def write_predictions(path: str | Path, task: object, predictions: list) -> Path:
    """`--output`: the task writes its predictions (JSON by default; a parser writes CoNLL-U)."""
    path = Path(path).expanduser()
    try:
        task.write_predictions(predictions, path)
    except OSError as error:
        raise DataError(
            f"Cannot write {path} ({error}). Give --output a path in a writable folder."
        ) from None
    return path


def parser(first_pass: bool = False) -> argparse.ArgumentParser:
    """The options every task shares; a run's task adds its own (``<run_dir> --help`` lists them).
    `first_pass`: the parser that only finds the run directory (no help, nothing required)."""
    result = argparse.ArgumentParser(
        prog="python -m litzoo.predict",
        add_help=not first_pass,
        description="Predict with the model a training run saved: image files -> labels (classification) or "
        "boxes/masks/keypoints (detection, instance segmentation, pose); texts -> labels.",
    )
    result.add_argument(
        "run_dir",
        nargs="?" if first_pass else None,
        help="the run directory (holds run.json, .hydra/ and checkpoints/)",
    )
    result.add_argument("inputs", nargs="*", help="image files, or texts (pairs: first<TAB>second)")
    result.add_argument("--file", "--input", help="a file with one input per line; - reads standard input")
    result.add_argument(
        "--checkpoint", help="a checkpoint other than the run's best (path, or name in checkpoints/)"
    )
    result.add_argument("--batch-size", type=int, default=16, help="inputs per forward pass (default: 16)")
    result.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:<index> or mps")
    result.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="the k best answers per input: classes (classification, default 5; text: the "
        "probabilities listed) or detections (default: all the model returns)",
    )
    result.add_argument("--json", action="store_true", help="print one JSON object per input")
    result.add_argument(
        "-o",
        "--output",
        help="also write all predictions to this file: JSON (detection: COCO results; "
        "dependency parsing: CoNLL-U)",
    )
    return result


def run_task_class(argv: Sequence[str]) -> type | None:
    """The task class of the run directory `argv` names (its `_target_`, checked against the allowlist),
    so that its own options (``TaskModule.add_predict_arguments``) can be parsed; None while `argv` names
    no run directory yet (``--help``, a wrong path: the full parse and `check_run_dir` report it)."""
    known, _ = parser(first_pass=True).parse_known_args(argv)
    if not known.run_dir:
        return None
    from litzoo.platform.run_dir import RunDir

    run = RunDir(known.run_dir)
    if not (run.path / ".hydra" / "config.yaml").is_file():
        return None
    import importlib

    from litzoo.platform.trust import check_targets

    target = str(run.config().task._target_)
    check_targets({"_target_": target}, resolve=True)
    module_name, _, name = target.rpartition(".")
    found = getattr(importlib.import_module(module_name), name, None)
    # A factory (pose: create_pose_task picks the class from the model) declares no options of its own.
    return found if isinstance(found, type) and hasattr(found, "add_predict_arguments") else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        task_class = run_task_class(argv)
        full = parser()
        if task_class is not None:
            task_class.add_predict_arguments(full)
        args = full.parse_intermixed_args(argv)
        extra = task_class.inputs_from_arguments(args) if task_class is not None else []
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    if bool(args.inputs or extra) == bool(args.file):
        full.error("give the inputs on the command line or with --file, not both (and not neither)")
    try:
        if args.batch_size < 1:
            raise ConfigError(f"--batch-size {args.batch_size}: give a positive number of inputs per batch.")
        if args.top_k is not None and args.top_k < 1:
            raise ConfigError(f"--top-k {args.top_k}: give a positive number of answers per input.")
        inputs = read_inputs(args.file) if args.file else check_inputs([*args.inputs, *extra])
        check_run_dir(args.run_dir)
        from litzoo import load  # torch, Lightning and the task's libraries: only once the arguments are fine

        task = load(args.run_dir, args.checkpoint, check_device(args.device))
        predictions = task.predict_inputs(inputs, batch_size=args.batch_size, top_k=args.top_k)
        for prediction in predictions:
            print(
                json.dumps(prediction, ensure_ascii=False)
                if args.json
                else task.format_prediction(prediction)
            )
        if args.output:
            path = write_predictions(args.output, task, predictions)
            print(f"Wrote the predictions of {len(predictions)} input(s) to {path}", file=sys.stderr)
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
