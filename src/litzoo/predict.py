"""Labels and probabilities for new texts from a trained text classifier's run directory.

A run directory of `task=text_classification` holds everything prediction needs: the
checkpoints (weights and hyper-parameters), and the vocabulary (`vocab.json`) or the
tokenizer with the encoder's configuration (`tokenizer/`) that training used. Nothing else
is read: not the training data, not the original checkpoint folder, not the network.

Command line::

    python -m litzoo.predict <run_dir> "a gripping , witty film ." "the plot is dull ."
    python -m litzoo.predict <run_dir> --file sentences.txt --json     # one text per line
    python -m litzoo.predict <run_dir> --file pairs.tsv                # pair tasks: first<TAB>second

prints one line per text: the predicted class, its probability and the text (regression:
the predicted score and the text), or with `--json` one JSON object per text with the
probabilities of every class.

Python::

    from litzoo.predict import load_predictor
    predictor = load_predictor("outputs/text_classification/textcnn/2026-01-01_12-00-00")
    predictor.predict(["a gripping film", "dull"])          # [Prediction(label="positive", ...), ...]
    predictor.predict([("the mayor approved it", "it was approved by the mayor")])   # pairs

The checkpoint is the run's best (from `run.json`), else `checkpoints/last.ckpt`, else the
newest intact one; `checkpoint=` / `--checkpoint` picks another. Checkpoints load weights-only
and their `_target_`s are checked against the allowlist before anything is built.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litzoo.errors import CheckpointError, DataError, LitzooError

TextInput = str | tuple[str, str]


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one text (or pair).

    `label` is the predicted class name (the score for regression); `probabilities` maps
    every class name to its probability (None for regression).
    """

    text: str
    text_pair: str | None
    label: str | float
    probabilities: dict[str, float] | None

    @property
    def score(self) -> float:
        """The predicted class's probability, or the predicted score for regression."""
        if self.probabilities is None:
            return float(self.label)
        return self.probabilities[str(self.label)]

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "text_pair": self.text_pair, "label": self.label,
                "probabilities": self.probabilities}


class TextPredictor:
    """A trained text classifier with the tokenization it was trained with."""

    def __init__(self, task: Any, encoding: Any, data_info: dict[str, Any], checkpoint: Path) -> None:
        self.task, self.encoding, self.data_info, self.checkpoint = task, encoding, data_info, checkpoint
        names = data_info.get("class_names") or data_info.get("label_names")
        self.class_names: list[str] | None = None if data_info["is_regression"] else [str(n) for n in names]
        self.is_pair = bool(data_info["is_pair"])

    def predict(self, texts: Sequence[TextInput], batch_size: int = 64) -> list[Prediction]:
        """Predictions for `texts` (strings, or `(first, second)` tuples for a pair task), in order."""
        import torch

        from litzoo.datamodules.text_classification import TextExample

        examples = [self._example(i, item) for i, item in enumerate(texts)]
        collate = self.encoding.collate(label_dtype=None, with_split=False)
        device = next(self.task.parameters()).device
        predictions: list[Prediction] = []
        for start in range(0, len(examples), batch_size):
            chunk: list[TextExample] = examples[start : start + batch_size]
            samples, _ = self.encoding.encode(chunk)
            batch = {key: value.to(device) for key, value in collate(samples).items()}
            with torch.no_grad():
                values = self.task.probabilities(self.task(batch)).cpu()
            predictions.extend(self._prediction(example, row) for example, row in zip(chunk, values))
        return predictions

    def _example(self, index: int, item: TextInput) -> Any:
        from litzoo.datamodules.text_classification import TextExample

        first, second = (item, None) if isinstance(item, str) else tuple(item)
        if self.is_pair and second is None:
            raise DataError(
                f"Input {index + 1} is a single text, but this model classifies sentence pairs: give "
                "(first, second) tuples, or on the command line `first<TAB>second`."
            )
        if not self.is_pair and second is not None:
            raise DataError(f"Input {index + 1} is a pair, but this model classifies single texts; give one text.")
        for text in (first, second):
            if text is not None and not str(text).strip():
                raise DataError(f"Input {index + 1} is empty; give a text to classify.")
        return TextExample(str(first).strip(), None if second is None else str(second).strip(), None, f"input-{index}")

    def _prediction(self, example: Any, values: Any) -> Prediction:
        if self.class_names is None:
            return Prediction(example.text_a, example.text_b, float(values), None)
        probabilities = {name: float(p) for name, p in zip(self.class_names, values.tolist())}
        return Prediction(example.text_a, example.text_b, self.class_names[int(values.argmax())], probabilities)


def find_checkpoint(run_dir: str | Path, checkpoint: str | Path | None = None) -> Path:
    """The checkpoint to predict with: `checkpoint` if given, else the run's best, else its last."""
    run_dir = Path(run_dir).expanduser()
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        path = path if path.is_absolute() or path.is_file() else run_dir / path
        if not path.is_file():
            raise CheckpointError(f"Checkpoint {path} does not exist. The run's checkpoints are in {run_dir / 'checkpoints'}.")
        return path
    if not run_dir.is_dir():
        raise CheckpointError(f"Run directory {run_dir} does not exist. Give the folder a training run wrote "
                              "(outputs/text_classification/<model>/<time>).")
    folder = run_dir / "checkpoints"
    record = run_dir / "run.json"
    if record.is_file():
        best = json.loads(record.read_text()).get("best_checkpoint")
        if best:
            for candidate in (folder / Path(best).name, Path(best)):  # this directory's own copy first
                if candidate.is_file():
                    return candidate
    if (folder / "last.ckpt").is_file():
        return folder / "last.ckpt"
    from litzoo.platform.checkpointing import newest_intact_checkpoint

    newest = newest_intact_checkpoint(folder)
    if newest is None:
        raise CheckpointError(f"No checkpoint in {folder}: the run did not save one. Predict from a run that trained.")
    return newest


def load_predictor(run_dir: str | Path, checkpoint: str | Path | None = None, device: str = "cpu") -> TextPredictor:
    """The trained model of `run_dir` (and its saved vocabulary/tokenizer), ready to predict."""
    from litzoo.datamodules.text_classification.datamodule import TOKENIZER_DIR, TextEncoding
    from litzoo.platform.checkpointing import load_checkpoint_file
    from litzoo.platform.trust import check_targets
    from litzoo.tasks.text_classification import TextClassificationTask

    run_dir = Path(run_dir).expanduser()
    path = find_checkpoint(run_dir, checkpoint)
    state = load_checkpoint_file(path)
    hparams = dict(state.get("hyper_parameters") or {})
    data_info = dict(hparams.get("data_info") or {})
    if "model" not in hparams or "encoding" not in data_info:
        raise CheckpointError(f"{path} is not a text-classification checkpoint (its hyper-parameters lack the model "
                              "and the text encoding). Give the run directory of a task=text_classification run.")
    check_targets(hparams, resolve=True)  # before anything named in the checkpoint is built
    encoding = TextEncoding.load(run_dir, data_info["encoding"])
    model = dict(hparams["model"])
    if encoding.kind == "vocab":
        data_info["vocab"] = encoding.vocab
    else:  # rebuild the encoder from the config saved next to the tokenizer; weights come from the checkpoint
        folder = str(run_dir / TOKENIZER_DIR)
        model["pretrained"] = folder
        data_info["encoding"] = {**data_info["encoding"], "pretrained": folder}
    arguments = {**hparams, "model": model, "data_info": data_info, "load_pretrained": False}
    try:
        task = TextClassificationTask(**arguments)
    except TypeError as error:
        raise CheckpointError(f"{path} was written by another version of the text task ({error}).") from error
    try:
        task.load_state_dict(state["state_dict"])
    except (RuntimeError, KeyError) as error:
        raise CheckpointError(
            f"The weights in {path} do not fit the model rebuilt from its run directory ({str(error).splitlines()[0]}). "
            f"The vocabulary/tokenizer in {run_dir} belongs to another run; use the checkpoint's own run directory."
        ) from error
    task.eval().to(device)
    info = {k: v for k, v in data_info.items() if k != "vocab"}
    return TextPredictor(task, encoding, info, path)


def predict(run_dir: str | Path, texts: Sequence[TextInput], checkpoint: str | Path | None = None,
            batch_size: int = 64, device: str = "cpu") -> list[Prediction]:
    """Labels and probabilities for `texts` from the model trained in `run_dir` (see `load_predictor`)."""
    return load_predictor(run_dir, checkpoint, device).predict(texts, batch_size)


def read_inputs(path: str | Path, pairs: bool, separator: str = "\t") -> list[TextInput]:
    """The texts of a file (`-`: standard input), one per line; pairs as `first<separator>second`."""
    if str(path) == "-":
        lines, name = sys.stdin.read().splitlines(), "standard input"
    else:
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(f"Input file {file} not found.")
        lines, name = file.read_text(encoding="utf-8").splitlines(), str(file)
    while lines and not lines[-1].strip():  # a trailing newline is not an input
        lines.pop()
    inputs: list[TextInput] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError(f"{name}, line {number}: empty line. Give one text per line (remove empty lines).")
        inputs.append(split_pair(line, separator, f"{name}, line {number}") if pairs else line.strip())
    if not inputs:
        raise DataError(f"{name} holds no text to classify.")
    return inputs


def split_pair(text: str, separator: str, where: str) -> tuple[str, str]:
    parts = text.split(separator)
    if len(parts) != 2 or not all(p.strip() for p in parts):
        shown = "<TAB>" if separator == "\t" else separator
        raise DataError(f"{where}: this model classifies sentence pairs; write each input as first{shown}second "
                        f"(found {len(parts)} part(s)).")
    return parts[0].strip(), parts[1].strip()


def _format(prediction: Prediction, as_json: bool) -> str:
    if as_json:
        return json.dumps(prediction.as_dict(), ensure_ascii=False)
    text = prediction.text if prediction.text_pair is None else f"{prediction.text}\t{prediction.text_pair}"
    if prediction.probabilities is None:
        return f"{prediction.score:.4f}\t{text}"
    return f"{prediction.label}\t{prediction.score:.4f}\t{text}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m litzoo.predict",
        description="Classify texts with the model a text_classification run trained (labels and probabilities).",
    )
    parser.add_argument("run_dir", help="the run directory (holds checkpoints/ and vocab.json or tokenizer/)")
    parser.add_argument("texts", nargs="*", help="texts to classify (pairs: first<TAB>second)")
    parser.add_argument("--file", help="a file with one text per line (pairs: first<TAB>second); - reads stdin")
    parser.add_argument("--checkpoint", help="a checkpoint other than the run's best (path, or name in checkpoints/)")
    parser.add_argument("--separator", default="\t", help="what separates the two texts of a pair (default: tab)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="one JSON object per text, with every class's probability")
    args = parser.parse_intermixed_args(argv)
    if bool(args.texts) == bool(args.file):
        parser.error("give the texts on the command line or with --file, not both (and not neither)")
    try:
        predictor = load_predictor(args.run_dir, args.checkpoint, args.device)
        if args.file:
            inputs = read_inputs(args.file, predictor.is_pair, args.separator)
        else:
            inputs = [split_pair(t, args.separator, f"text {i + 1}") if predictor.is_pair else t
                      for i, t in enumerate(args.texts)]
        for prediction in predictor.predict(inputs, args.batch_size):
            print(_format(prediction, args.json))
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
