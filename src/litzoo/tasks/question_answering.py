"""Extractive question answering (SQuAD 1.1 / 2.0): a span head on a BERT-family encoder.

- **Loss**: cross-entropy of the start and of the end token over each window (their mean, as
  ``BertForQuestionAnswering``), padding excluded; windows without the answer and unanswerable
  questions are labelled at ``[CLS]``.
- **Decoding** (:mod:`litzoo.text.span_decoding`): the n-best start/end pairs of every window of a
  question (``n_best_size``, at most ``max_answer_length`` tokens), mapped back through the offsets
  to the original context text; SQuAD 2.0 compares the null score with the best span:
  ``null_odds = null_score - best_score``, no answer when ``null_odds > null_threshold``.
- **The null threshold** (2.0): ``task.null_threshold=auto`` tunes it on every validation to the
  value with the best F1 (the official best_f1_thresh); the tuned value is a buffer of the model, so
  it is saved in the checkpoint and used for the test and for prediction; a number fixes it.
- **Metrics** over the whole split, gathered across DDP ranks and scored once with the official
  logic (:mod:`litzoo.metrics.squad`), 0-100 as the scripts print them: ``val/exact_match``,
  ``val/f1`` (monitored), for 2.0 also ``has_ans_exact_match``, ``has_ans_f1``, ``no_ans_f1``,
  ``best_exact_match``, ``best_f1`` and ``null_threshold``; the same under ``test/``. Global rank
  0 writes the official files into the run directory: ``predictions.json`` (+ ``null_odds.json``)
  after the test, ``predictions_val.json`` (+ ``null_odds_val.json``) after every validation, and
  logs the official result dict to train.log. The logged values are what the official scripts
  give on those files (``--na-prob-thresh`` = the logged ``null_threshold``).
- **Prediction** from a run directory: ``python -m litzoo.predict <run_dir> --question Q --context C``
  (or ``question<TAB>context`` lines, JSON objects, or a whole SQuAD file: ``-o predictions.json``
  writes the official ``{id: answer}`` file).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from litzoo.errors import CheckpointError, ConfigError, DataError
from litzoo.metrics.squad import (
    evaluate_v1,
    evaluate_v2,
    gather_across_ranks,
    logged_metrics,
    raw_scores_v2,
    tune_null_threshold,
)
from litzoo.platform.registry import build
from litzoo.tasks.base import EvaluatingTask, Scores
from litzoo.text.span_decoding import Answer, WindowCandidates, decide, window_candidates

log = logging.getLogger("litzoo")

# Keys of the shared encoder entries that describe them to the tasks rather than to the factory.
MODEL_META_KEYS = ("tokenizer", "recipe")


class SquadMetrics:
    """The windows' candidates of one split, keyed by window; gathered across ranks, decided per
    question and scored once with the official logic (SQuAD `version` 1.1 or 2.0)."""

    def __init__(self, examples: Sequence[Any], version: str, n_best_size: int = 20) -> None:
        self.examples, self.version, self.n_best_size = examples, version, int(n_best_size)
        self.records: dict[int, tuple[int, WindowCandidates]] = {}
        self.threshold: float | None = None  # None: tune it (2.0), else predict no answer above it
        self.chosen_threshold: float = 0.0
        self.answers: dict[str, Answer] = {}
        self.quiet = False  # no warning about a partial split (Lightning's sanity check is one)

    def reset(self) -> None:
        self.records = {}

    def update(
        self,
        window_indices: Sequence[int],
        example_indices: Sequence[int],
        candidates: Sequence[WindowCandidates],
    ) -> None:
        for window, example, found in zip(window_indices, example_indices, candidates):
            self.records[int(window)] = (int(example), found)

    def decide_all(self) -> dict[int, Answer]:
        """Every evaluated question's answer (2.0: before any threshold), by example index."""
        merged: dict[int, tuple[int, WindowCandidates]] = {}
        for part in gather_across_ranks(self.records):  # collective: every rank calls it
            merged.update(part)
        by_example: dict[int, list[WindowCandidates]] = defaultdict(list)
        for window in sorted(merged):
            example, found = merged[window]
            by_example[example].append(found)
        with_null = self.version == "2.0"
        return {
            index: decide(
                self.examples[index].context,
                found,
                self.n_best_size,
                with_null=with_null,
                threshold=float("inf"),
            )
            for index, found in sorted(by_example.items())
        }

    def compute(self) -> Scores:
        decided = self.decide_all()
        examples = [self.examples[i] for i in decided]
        if len(examples) < len(self.examples) and not self.quiet:
            log.warning(
                "Scored %d of the split's %d questions (the evaluation batches were limited)",
                len(examples),
                len(self.examples),
            )
        gold = {e.qid: e.answer_texts for e in examples}
        answers = {e.qid: decided[i] for i, e in zip(decided, examples)}
        self.answers = answers
        raw = {qid: answer.best_text for qid, answer in answers.items()}
        null_odds: dict[str, float] | None = None
        if self.version == "1.1":
            official: Mapping[str, float] = evaluate_v1(gold, raw)
            predictions, threshold = raw, None
            metrics = logged_metrics(official, "1.1")
        else:
            null_odds = {qid: float(answer.null_odds) for qid, answer in answers.items()}  # type: ignore[arg-type]
            threshold = self.threshold
            if threshold is None:  # the best-F1 threshold of the raw predictions (official best_f1_thresh)
                has_answer = {qid: bool(texts) for qid, texts in gold.items()}
                _, f1_raw = raw_scores_v2(gold, raw)
                threshold = tune_null_threshold(raw, f1_raw, null_odds, has_answer)
            predictions = {qid: "" if null_odds[qid] > threshold else text for qid, text in raw.items()}
            official = evaluate_v2(gold, predictions, null_odds, na_prob_thresh=threshold)
            metrics = {**logged_metrics(official, "2.0"), "null_threshold": float(threshold)}
        self.chosen_threshold = 0.0 if threshold is None else float(threshold)
        table = json.dumps(official, indent=2)

        def save(directory: str | Path, suffix: str) -> list[Path]:
            from litzoo.platform.run_dir import write_json_atomic

            directory = Path(directory)
            saved = [directory / f"predictions{suffix}.json"]
            write_json_atomic(saved[0], predictions)
            if null_odds is not None:
                saved.append(directory / f"null_odds{suffix}.json")
                write_json_atomic(saved[1], null_odds)
            return saved

        return Scores(metrics=metrics, tables={"official": table}, save=save)


class QuestionAnsweringTask(EvaluatingTask):
    """Fine-tune a span model on SQuAD-format data (see the module docstring).

    Args:
        model: the model config entry (its `_target_` -- the span model -- and arguments).
        data_info: :meth:`litzoo.datamodules.question_answering.datamodule.SquadDataModule.info`
            (the SQuAD version and how text is windowed); its `runtime_encoding` (prediction) is not saved.
        optim, sched, no_decay_norm_bias, ema_decay, max_grad_norm: see :class:`~litzoo.tasks.base.TaskModule`.
        n_best_size: start and end logits considered per window, and answers kept per question.
        max_answer_length: the longest answer, in tokens.
        null_threshold: ``auto`` (tuned on validation, stored in the checkpoint) or a fixed number (2.0).
        layer_decay: layer-wise learning-rate decay (1 = off; see `encoder_param_groups`).
        save_predictions: write predictions.json (+ null_odds.json) into the run directory.
        load_pretrained: read the pretrained encoder weights; false when they come from a litzoo checkpoint.
    """

    primary_metric = "f1"

    def __init__(
        self,
        model: dict,
        data_info: dict,
        optim: dict,
        sched: dict | None = None,
        n_best_size: int = 20,
        max_answer_length: int = 30,
        null_threshold: float | str = "auto",
        layer_decay: float = 1.0,
        save_predictions: bool = True,
        no_decay_norm_bias: bool = True,
        ema_decay: float | None = None,
        max_grad_norm: float | None = 1.0,
        load_pretrained: bool = True,
    ) -> None:
        super().__init__(optim, sched, no_decay_norm_bias, ema_decay, save_predictions, max_grad_norm)
        self.encoding = data_info.get("runtime_encoding")  # set by restore_arguments (prediction)
        data_info = {k: v for k, v in data_info.items() if k != "runtime_encoding"}
        self.version = str(data_info["version"])
        if int(n_best_size) < 1 or int(max_answer_length) < 1:
            raise ConfigError(
                f"task.n_best_size={n_best_size} and task.max_answer_length={max_answer_length} must "
                "be positive (SQuAD: 20 and 30)."
            )
        self.n_best_size, self.max_answer_length = int(n_best_size), int(max_answer_length)
        self.tune_threshold = isinstance(null_threshold, str)
        if self.tune_threshold and null_threshold != "auto":
            raise ConfigError(
                f"task.null_threshold={null_threshold!r}: use auto (tuned on the validation split) or a "
                "number (no answer when null_score - best_span_score exceeds it; BERT used -1 to -5)."
            )
        self.fixed_threshold = None if self.tune_threshold else float(null_threshold)
        if not 0.0 < float(layer_decay) <= 1.0:
            raise ConfigError(f"task.layer_decay={layer_decay} must be in (0, 1] (1 = off).")
        self.layer_decay = float(layer_decay)
        encoding = data_info["encoding"]
        arguments = {k: v for k, v in model.items() if k not in MODEL_META_KEYS}
        self.net = build(
            arguments,
            tokenizer=encoding["pretrained"],
            max_length=int(encoding["max_seq_length"]),
            load_pretrained=load_pretrained,
        )
        # The threshold in use (tuned, or fixed): part of the state dict, hence of every checkpoint.
        self.register_buffer("null_threshold", torch.tensor(self.fixed_threshold or 0.0, dtype=torch.float64))
        self.data_info = data_info
        self.save_hyperparameters()  # without the runtime encoding
        self.init_ema()

    # -- the model -----------------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.logits(self.eval_net, batch)

    @staticmethod
    def logits(net: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return net(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))

    @staticmethod
    def loss(start: torch.Tensor, end: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Mean of the start and end cross-entropies, padding excluded from the softmax."""
        padding = ~batch["attention_mask"].bool()
        start = start.float().masked_fill(padding, torch.finfo(torch.float32).min)
        end = end.float().masked_fill(padding, torch.finfo(torch.float32).min)
        return (
            F.cross_entropy(start, batch["start_positions"]) + F.cross_entropy(end, batch["end_positions"])
        ) / 2

    def threshold_in_use(self) -> float:
        return float(self.null_threshold) if self.fixed_threshold is None else self.fixed_threshold

    # -- steps ---------------------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        start, end = self.logits(self.net, batch)
        loss = self.loss(start, end, batch)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(start))
        return loss

    def _evaluate(self, batch: Mapping[str, torch.Tensor], stage: str) -> None:
        start, end = self.logits(self.eval_net, batch)
        found = window_candidates(
            start, end, batch["offsets"], batch["attention_mask"], self.n_best_size, self.max_answer_length
        )
        self.metrics_for(stage).update(batch["window_index"].tolist(), batch["example_index"].tolist(), found)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    # -- evaluation ----------------------------------------------------------------------------------
    def make_metrics(self, split: str) -> SquadMetrics:
        return SquadMetrics(self.datamodule.examples(split), self.version, self.n_best_size)

    def _finish(self, stage: str) -> None:
        metrics: SquadMetrics = self.metrics_for(stage)
        tune = self.version == "2.0" and self.tune_threshold and stage == "val"
        metrics.threshold = None if tune else self.threshold_in_use()
        metrics.quiet = self.trainer.sanity_checking
        scores = metrics.compute()  # collective: every rank calls it
        if tune and not self.trainer.sanity_checking:  # every rank tuned the same value from the same answers
            self.null_threshold.fill_(metrics.chosen_threshold)
        values = {f"{stage}/{k}": float(v) for k, v in scores.metrics.items()}
        primary = f"{stage}/{self.primary_metric}"
        self.log(primary, values.pop(primary), prog_bar=True, sync_dist=True, reduce_fx="max")
        self.log_dict(values, sync_dist=True, reduce_fx="max")
        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        when = f"val, epoch {self.current_epoch}" if stage == "val" else "test"
        log.info("SQuAD %s evaluation (%s; 0-100):\n%s", self.version, when, scores.tables["official"])
        if self.save_detections and scores.save is not None:
            for path in scores.save(self.trainer.default_root_dir, "_val" if stage == "val" else ""):
                log.info("Saved the %s predictions to %s", stage, path)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint that read text with another tokenizer (clearer than an embedding mismatch)."""
        saved = ((checkpoint.get("hyper_parameters") or {}).get("data_info") or {}).get("encoding") or {}
        mine = self.data_info["encoding"]
        if saved and saved.get("vocab_size") != mine.get("vocab_size"):
            raise CheckpointError(
                f"The checkpoint's model reads a vocabulary of {saved.get('vocab_size')} tokens but this run's data is "
                f"tokenized into {mine.get('vocab_size')}. Evaluate it with the model it was trained with (its run's "
                ".hydra/config.yaml), or from its run directory."
            )

    # -- optimization --------------------------------------------------------------------------------
    def param_groups(self) -> list[dict[str, Any]] | Any:
        if self.layer_decay == 1.0:
            return super().param_groups()  # no decay on LayerNorm weights and biases
        from litzoo.models.text_encoder import encoder_param_groups

        weight_decay = float(self.optim_cfg.get("weight_decay", 0.0) or 0.0)
        groups = encoder_param_groups(
            self.net, lr=float(self.optim_cfg["lr"]), weight_decay=weight_decay, layer_decay=self.layer_decay
        )
        if not self.no_decay_norm_bias:
            for group in groups:
                group["weight_decay"] = weight_decay
        return groups

    # -- prediction from a run directory -------------------------------------------------------------
    @staticmethod
    def restore_arguments(hparams: dict[str, Any], run_dir: Any) -> dict[str, Any]:
        """The run's tokenizer (and the encoder config saved beside it); weights come from the checkpoint."""
        from litzoo.datamodules.question_answering.datamodule import TOKENIZER_DIR, QAEncoding

        data_info = dict(hparams.get("data_info") or {})
        if "model" not in hparams or "encoding" not in data_info or "version" not in data_info:
            raise CheckpointError(
                f"The checkpoint of {run_dir.path} is not a question-answering checkpoint (its hyper-parameters lack "
                "the model, the SQuAD version and the text windows). Give the run directory of a "
                "task=question_answering run."
            )
        folder = str(run_dir.artifact(TOKENIZER_DIR))
        encoding = QAEncoding.load(run_dir.path, data_info["encoding"])
        data_info["encoding"] = {**data_info["encoding"], "pretrained": folder}
        data_info["runtime_encoding"] = encoding
        return {
            **hparams,
            "model": {**hparams["model"], "pretrained": folder},
            "data_info": data_info,
            "load_pretrained": False,
        }

    def read_inputs(self, inputs: Sequence[Any]) -> list[Any]:
        """Questions to answer: ``{"question", "context"[, "id"]}`` objects (or their JSON text, what
        ``--question/--context`` pass), ``question<TAB>context`` lines, or SQuAD JSON files (all questions)."""
        from litzoo.datamodules.question_answering.squad import SquadExample, read_squad

        examples: list[Any] = []
        for number, item in enumerate(inputs, start=1):
            where = f"Input {number}"
            if (
                isinstance(item, str)
                and item.strip().endswith(".json")
                and Path(item.strip()).expanduser().is_file()
            ):
                examples += read_squad(Path(item.strip()).expanduser()).examples
                continue
            fields: Any = item
            if isinstance(item, str) and item.lstrip().startswith("{"):
                try:
                    fields = json.loads(item)
                except json.JSONDecodeError as error:
                    raise DataError(
                        f"{where} looks like JSON but is not ({error.msg}); give "
                        '{"question": ..., "context": ...}.'
                    ) from None
            elif isinstance(item, str):
                parts = item.split("\t")
                if len(parts) != 2:
                    raise DataError(
                        f"{where}: a question needs its context. Give --question Q --context C, a line "
                        'question<TAB>context, a JSON object {"question": ..., "context": ...}, or a SQuAD .json file.'
                    )
                fields = {"question": parts[0], "context": parts[1]}
            if not isinstance(fields, Mapping):
                raise DataError(f"{where} is a {type(fields).__name__}; give a question with its context.")
            unknown = sorted(set(fields) - {"id", "question", "context"})
            if unknown:
                raise DataError(
                    f"{where}: unknown field(s) {', '.join(unknown)}; a question-answering input has "
                    "question, context and optionally id."
                )
            question, context = str(fields.get("question") or ""), str(fields.get("context") or "")
            if not question.strip() or not context.strip():
                raise DataError(
                    f"{where}: the {'question' if not question.strip() else 'context'} is empty; give both "
                    "a question and the text that answers it."
                )
            examples.append(
                SquadExample(str(fields.get("id") or f"input-{number}"), "", context, question, ())
            )
        if not examples:
            raise DataError(
                "Nothing to answer: give a question with its context (or a SQuAD file with questions)."
            )
        return examples

    @torch.no_grad()
    def answer(self, examples: Sequence[Any], batch_size: int = 16) -> list[Answer]:
        """The decoded answer of each example (in order), windowed and thresholded as in evaluation."""
        if self.encoding is None:
            raise CheckpointError(
                "This task was not loaded from a run directory, so it has no tokenizer to read "
                "questions with. Load it with litzoo.load(<run_dir>)."
            )
        windows = self.encoding.windows(list(examples), labelled=False)
        collate = self.encoding.collate()
        found: dict[int, list[WindowCandidates]] = defaultdict(list)
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        for begin in range(0, len(windows), batch_size):
            samples = [windows.sample(i) for i in range(begin, min(begin + batch_size, len(windows)))]
            batch = {k: v.to(device) for k, v in collate(samples).items()}
            start, end = self(batch)
            candidates = window_candidates(
                start,
                end,
                batch["offsets"],
                batch["attention_mask"],
                self.n_best_size,
                self.max_answer_length,
            )
            for example, window in zip(batch["example_index"].tolist(), candidates):
                found[example].append(window)
        self.train(was_training)
        threshold = self.threshold_in_use()
        return [
            decide(
                e.context, found[i], self.n_best_size, with_null=self.version == "2.0", threshold=threshold
            )
            for i, e in enumerate(examples)
        ]

    def predict_inputs(
        self, inputs: list[str], batch_size: int = 16, top_k: int | None = None
    ) -> list[dict[str, Any]]:
        """One dict per question: ``{"id", "question", "answer"`` ("" = no answer), ``"no_answer"``, the best
        span's ``"text"``, ``"start"`` character and ``"probability"`` (among the n best), ``"null_odds"`` (2.0)
        and, with `top_k`, the k best ``"nbest"`` answers}."""
        examples = self.read_inputs(inputs)
        predictions = []
        for example, answer in zip(examples, self.answer(examples, batch_size)):
            best = next((n for n in answer.nbest if n["text"] == answer.best_text), answer.nbest[0])
            row: dict[str, Any] = {
                "id": example.qid,
                "question": example.question,
                "answer": answer.text,
                "no_answer": answer.is_null,
                "text": answer.best_text,
                "start": answer.best_start,
                "probability": float(best["probability"]),
                "null_odds": answer.null_odds,
            }
            if top_k:
                row["nbest"] = answer.nbest[:top_k]
            predictions.append(row)
        return predictions

    @classmethod
    def add_predict_arguments(cls, parser: Any) -> None:
        """``--question Q --context C`` (repeatable, in pairs) on ``python -m litzoo.predict``."""
        group = parser.add_argument_group("question answering")
        group.add_argument(
            "--question", action="append", default=[], help="a question (give --context with each one)"
        )
        group.add_argument(
            "--context", action="append", default=[], help="the text that answers the --question before it"
        )

    @classmethod
    def inputs_from_arguments(cls, args: Any) -> list[str]:
        """One JSON object per ``--question``/``--context`` pair (what `read_inputs` reads)."""
        questions, contexts = list(args.question or []), list(args.context or [])
        if len(questions) != len(contexts):
            raise DataError(
                f"{len(questions)} --question but {len(contexts)} --context: every question needs the text "
                'that answers it (--question "Where was Zoë born?" --context "Zoë was born in Porto.").'
            )
        return [
            json.dumps({"question": q, "context": c}, ensure_ascii=False) for q, c in zip(questions, contexts)
        ]

    def format_prediction(self, prediction: dict[str, Any]) -> str:
        """The answer span, or ``no answer``."""
        return "no answer" if prediction["no_answer"] else str(prediction["answer"])

    def predictions_file(self, predictions: list[dict[str, Any]]) -> Any:
        """The official predictions format: ``{question id: answer text}`` ("" = no answer)."""
        return {str(p["id"]): p["answer"] for p in predictions}

    # -- export (python -m litzoo.export <run_dir>) ------------------------------------------------

    def export_spec(self) -> Any:
        """Windows of token ids ``[B, T]`` with ``attention_mask`` (and ``token_type_ids``), batch and length
        dynamic -> ``start_logits``, ``end_logits`` ``[B, T]``. Windowing, span decoding and the no-answer
        threshold stay outside (``preprocessing.json`` says how); the run's tokenizer is copied beside it."""
        from litzoo.datamodules.question_answering.datamodule import TOKENIZER_DIR
        from litzoo.tasks.base import ExportSpec

        names = ("input_ids", "attention_mask")
        if self.encoding is not None and self.encoding.with_token_types:
            names += ("token_type_ids",)
        run_dir = getattr(self, "run_dir", None)
        tokenizer = run_dir.artifact(TOKENIZER_DIR) if run_dir is not None else None
        axes = {name: {0: "batch", 1: "sequence"} for name in (*names, "start_logits", "end_logits")}
        return ExportSpec(
            module=self.eval_net.eval(),
            calls=lambda batch: [tuple(batch[name] for name in names)],
            input_names=names,
            output_names=("start_logits", "end_logits"),
            dynamic_axes=axes,
            preprocessing={
                "inputs": {name: "int64 [batch, sequence]" for name in names},
                "tokenizer": {
                    "files": [TOKENIZER_DIR] if tokenizer is not None else [],
                    **self.data_info["encoding"],
                },
                "outputs": "start/end logits per token; padding must be masked before the span search",
                "decoding": {
                    "version": self.data_info.get("version"),
                    "n_best_size": self.n_best_size,
                    "max_answer_length": self.max_answer_length,
                    "null_threshold": float(self.null_threshold),
                },
            },
            files={TOKENIZER_DIR: str(tokenizer)} if tokenizer is not None and tokenizer.is_dir() else {},
            int8="dynamic",
            atol=1e-4,
        )
