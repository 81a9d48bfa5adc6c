"""Dependency parsing: the biaffine parser trained on a treebank, decoded into trees, scored by UAS/LAS.

- **Loss** (Dozat & Manning 2017): cross-entropy of each word's head over all positions of its
  sentence, plus cross-entropy of its relation at the gold head.
- **Decoding**: every output is a tree with exactly one word attached to the root:
  Chu-Liu/Edmonds (`model.decoder=mst`, non-projective treebanks such as UD) or Eisner
  (`model.decoder=eisner`, projective ones such as PTB-SD); relations are the best-scoring
  label of each predicted arc.
- **Metrics** over the whole split, gathered across DDP ranks and scored once
  (`litzoo.metrics.dependency_parsing`, CoNLL 2018 conventions): `val/uas`, `val/las` (the
  monitor), `val/ucm`, `val/lcm` and `test/...`; `task.punct=exclude` applies the PTB convention
  of not scoring punctuation. Global rank 0 logs the per-relation table to train.log and writes
  the predicted trees as CoNLL-U into the run directory (`parsed_val.conllu` after every
  validation, `parsed_test.conllu` after the test), every column but HEAD and DEPREL untouched.
- **Prediction** from a run directory: ``python -m litzoo.predict <run_dir> input.conllu`` (or a
  text file of pre-tokenised sentences, one per line, or the sentences themselves).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from litzoo.errors import CheckpointError, ConfigError, DataError
from litzoo.metrics.dependency_parsing import (
    DEFAULT_PUNCT_TAGS,
    attachment_scores,
    check_punct,
    gather_across_ranks,
)
from litzoo.platform.registry import build
from litzoo.tasks.base import EvaluatingTask, Scores, split_model_config
from litzoo.text.conllu import Sentence, format_sentence, write_treebank
from litzoo.text.dependency_trees import DECODERS, decode_heads

log = logging.getLogger("litzoo")


@dataclass
class ExponentialDecayFactor:
    """Linear warmup, then ``decay_rate ** (step / decay_steps)`` (Dozat & Manning: 0.75 every 5000 steps)."""

    warmup_steps: int
    start_factor: float
    decay_rate: float
    decay_steps: int

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.start_factor + (1.0 - self.start_factor) * step / max(self.warmup_steps, 1)
        return self.decay_rate ** ((step - self.warmup_steps) / self.decay_steps)


def exponential_decay(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    decay_rate: float = 0.75,
    decay_steps: int = 5000,
    warmup_epochs: float = 0,
    warmup_start_factor: float = 0.1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """The biaffine parser's schedule, stepped every batch (a `sched` target: see conf/experiment/ptb)."""
    warmup = min(int(round(warmup_epochs * steps_per_epoch)), max(total_steps - 1, 0))
    factor = ExponentialDecayFactor(warmup, warmup_start_factor, float(decay_rate), int(decay_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# Keys of a parser model config that describe it to the task rather than to its factory.
MODEL_META_KEYS = ("decoder", "recipe")
CONLL_SUFFIXES = (".conllu", ".conll", ".conllx")


class ParserMetrics:
    """Predicted trees of one split, keyed by sentence index; gathered across ranks and scored once."""

    def __init__(
        self, sentences: Sequence[Sentence], relations: Sequence[str], punct: str, punct_tags: Sequence[str]
    ) -> None:
        self.sentences, self.relations = sentences, list(relations)
        self.punct, self.punct_tags = punct, tuple(punct_tags)
        self.predicted: dict[int, tuple[list[int], list[int]]] = {}

    def reset(self) -> None:
        self.predicted = {}

    def update(
        self, indices: Sequence[int], heads: Sequence[Sequence[int]], rels: Sequence[Sequence[int]]
    ) -> None:
        for index, tree_heads, tree_rels in zip(indices, heads, rels):
            self.predicted[int(index)] = (list(tree_heads), list(tree_rels))

    def compute(self) -> Scores:
        merged: dict[int, tuple[list[int], list[int]]] = {}
        for part in gather_across_ranks(self.predicted):  # collective: every rank calls it
            merged.update(part)
        order = sorted(merged)
        gold = [self.sentences[i] for i in order]
        heads = [merged[i][0] for i in order]
        deprels = [[self.relations[r] for r in merged[i][1]] for i in order]
        scores = attachment_scores(gold, heads, deprels, self.punct, self.punct_tags)

        def save(directory: str | Path, stem: str) -> list[Path]:
            blocks = (format_sentence(s, h, d) for s, h, d in zip(gold, heads, deprels))
            return [write_treebank(Path(directory) / f"{stem}.conllu", blocks)]

        return Scores(metrics=scores.metrics(), tables={"relations": scores.relation_table()}, save=save)


class DependencyParsingTask(EvaluatingTask):
    """Train a biaffine parser and score its trees (see the module docstring).

    Args:
        model: the model config entry (its `_target_` and arguments, `decoder`, `recipe`).
        data_info: :meth:`litzoo.datamodules.dependency_parsing.datamodule.TreebankDataModule.info`;
            its `vocab` (for pretrained word vectors) is not saved: the run directory holds it.
        optim, sched, no_decay_norm_bias, ema_decay, max_grad_norm: see :class:`~litzoo.tasks.base.TaskModule`.
        punct: `include` (CoNLL 2018: every word is scored) or `exclude` (the PTB convention).
        punct_tags: gold UPOS/XPOS tags that mark punctuation for `punct=exclude`.
        save_predictions: write the predicted trees into the run directory.
        load_pretrained: read pretrained word vectors / encoder weights; false when the weights
            come from a litzoo checkpoint.
    """

    primary_metric = "las"

    def __init__(
        self,
        model: dict,
        data_info: dict,
        optim: dict,
        sched: dict | None = None,
        punct: str = "include",
        punct_tags: Sequence[str] = DEFAULT_PUNCT_TAGS,
        save_predictions: bool = True,
        no_decay_norm_bias: bool = False,
        ema_decay: float | None = None,
        max_grad_norm: float | None = 5.0,
        load_pretrained: bool = True,
    ) -> None:
        super().__init__(optim, sched, no_decay_norm_bias, ema_decay, save_predictions, max_grad_norm)
        vocab = data_info.get("vocab")
        self.encoding = data_info.get("runtime_encoding")  # set by restore_arguments (prediction)
        data_info = {k: v for k, v in data_info.items() if k not in ("vocab", "runtime_encoding")}
        self.punct = check_punct(punct)
        self.punct_tags = tuple(punct_tags)
        self.decoder = str(model.get("decoder", "mst"))
        if self.decoder not in DECODERS:
            raise ConfigError(
                f"model.decoder={self.decoder!r} is unknown; use mst (Chu-Liu/Edmonds, any tree) or "
                "eisner (projective trees only)."
            )
        self.relations = list(data_info["relations"])
        self.data_info = data_info
        arguments, _ = split_model_config({k: v for k, v in model.items() if k not in MODEL_META_KEYS})
        self.net = build(arguments, **self.network_arguments(data_info, vocab, load_pretrained))
        self.kind = data_info["encoding"].get("kind", "vocab")
        self.save_hyperparameters()  # without the vocabulary objects
        self.init_ema()

    @staticmethod
    def network_arguments(data_info: Mapping[str, Any], vocab: Any, load_pretrained: bool) -> dict[str, Any]:
        encoding = data_info["encoding"]
        common = {
            "num_rels": int(encoding["num_rels"]),
            "num_upos": int(encoding["num_upos"]),
            "num_xpos": int(encoding["num_xpos"]),
            "load_pretrained": load_pretrained,
        }
        if encoding.get("kind", "vocab") == "hf":
            return {**common, "subword_pad": int(encoding["subword_pad"])}
        return {
            **common,
            "num_words": int(encoding["num_words"]),
            "num_chars": int(encoding["num_chars"]),
            "pad_id": int(encoding["pad_id"]),
            "vocab": getattr(vocab, "words", None),
        }

    # -- the model -----------------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.eval_net(batch)

    @staticmethod
    def word_mask(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Real words (not the root, not padding)."""
        mask = batch["words"].ne(0)
        mask[:, 0] = False
        return mask

    def loss(
        self, s_arc: torch.Tensor, s_rel: torch.Tensor, batch: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        mask = self.word_mask(batch)
        heads, rels = batch["heads"][mask], batch["rels"][mask]
        arc_loss = F.cross_entropy(s_arc[mask].float(), heads)
        rel_scores = s_rel[mask]  # [M, N, R]
        rel_scores = rel_scores[torch.arange(len(heads), device=heads.device), heads]
        rel_loss = F.cross_entropy(rel_scores.float(), rels, ignore_index=-1)
        return {"loss": arc_loss + rel_loss, "arc_loss": arc_loss, "rel_loss": rel_loss}

    def decode(
        self, s_arc: torch.Tensor, s_rel: torch.Tensor, batch: Mapping[str, torch.Tensor]
    ) -> tuple[list[list[int]], list[list[int]]]:
        """Trees (single root) and their relations: per sentence, heads and relation ids of words 1..n."""
        lengths = batch["words"].ne(0).sum(-1) - 1
        heads = decode_heads(s_arc, lengths, self.decoder)
        rels = s_rel.gather(2, heads.clamp(min=0)[:, :, None, None].expand(-1, -1, 1, s_rel.shape[-1]))
        rels = rels.squeeze(2).argmax(-1)
        heads_out, rels_out = [], []
        for b, n in enumerate(lengths.tolist()):
            heads_out.append(heads[b, 1 : n + 1].tolist())
            rels_out.append(rels[b, 1 : n + 1].tolist())
        return heads_out, rels_out

    # -- steps ---------------------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        s_arc, s_rel = self.net(batch)
        losses = self.loss(s_arc, s_rel, batch)
        size = int(batch["words"].shape[0])
        self.log("train/loss", losses["loss"], on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        self.log_dict(
            {f"train/{k}": v for k, v in losses.items() if k != "loss"},
            on_step=True,
            on_epoch=True,
            batch_size=size,
        )
        return losses["loss"]

    def _evaluate(self, batch: Mapping[str, torch.Tensor], stage: str) -> None:
        s_arc, s_rel = self.eval_net(batch)
        heads, rels = self.decode(s_arc, s_rel, batch)
        self.metrics_for(stage).update(batch["index"].tolist(), heads, rels)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    # -- evaluation ----------------------------------------------------------------------------------
    def make_metrics(self, split: str) -> ParserMetrics:
        return ParserMetrics(self.datamodule.sentences(split), self.relations, self.punct, self.punct_tags)

    def _finish(self, stage: str) -> None:
        scores: Scores = self.metrics_for(stage).compute()  # collective: every rank calls it
        values = {f"{stage}/{k}": float(v) for k, v in scores.metrics.items()}
        primary = f"{stage}/{self.primary_metric}"
        # Every rank holds the same numbers (all predictions were gathered); max keeps them exact.
        self.log(primary, values.pop(primary), prog_bar=True, sync_dist=True, reduce_fx="max")
        self.log_dict(values, sync_dist=True, reduce_fx="max")
        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        when = f"epoch {self.current_epoch}" if stage == "val" else "test"
        log.info(
            "Labeled attachment per relation (%s, %s; punctuation %sd):\n%s",
            stage,
            when,
            self.punct,
            scores.tables["relations"],
        )
        if self.save_detections and scores.save is not None:
            for path in scores.save(self.trainer.default_root_dir, f"parsed_{stage}"):
                log.info("Saved the predicted %s trees to %s", stage, path)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint trained on other vocabularies (clearer than a tensor size mismatch)."""
        saved = ((checkpoint.get("hyper_parameters") or {}).get("data_info") or {}).get("encoding") or {}
        mine = self.data_info["encoding"]
        keys = ("num_words", "num_rels", "num_chars", "num_upos", "num_xpos")
        if saved and any(saved.get(k) != mine.get(k) for k in keys):
            raise CheckpointError(
                f"The checkpoint's parser was trained with vocabularies of sizes {[saved.get(k) for k in keys]} "
                f"(words, relations, characters, UPOS, XPOS) but this run's data gives {[mine.get(k) for k in keys]}. "
                "Evaluate it with the data it was trained on, or from its run directory (its parser_vocab.json)."
            )

    # -- prediction from a run directory -------------------------------------------------------------
    @staticmethod
    def restore_arguments(hparams: dict[str, Any], run_dir: Any) -> dict[str, Any]:
        """The vocabularies (and tokenizer) the run saved; weights come from the checkpoint."""
        from litzoo.datamodules.dependency_parsing.datamodule import TOKENIZER_DIR, ParserEncoding

        path = Path(getattr(run_dir, "path", run_dir))
        data_info = dict(hparams["data_info"])
        encoding = ParserEncoding.load(path, data_info["encoding"])
        model = dict(hparams["model"])
        if encoding.kind == "hf":
            folder = str(path / TOKENIZER_DIR)
            model["pretrained"] = folder
            data_info["encoding"] = {**data_info["encoding"], "pretrained": folder}
        data_info["runtime_encoding"] = encoding
        return {**hparams, "model": model, "data_info": data_info, "load_pretrained": False}

    def read_inputs(self, inputs: Sequence[str]) -> list[Sentence]:
        """Sentences to parse: CoNLL-U/CoNLL-X files, text files (one pre-tokenised sentence per line), or
        the pre-tokenised sentences themselves."""
        from litzoo.text.conllu import read_treebank, sentence_from_tokens

        sentences: list[Sentence] = []
        for number, item in enumerate(inputs, start=1):
            path = Path(str(item)).expanduser()
            if path.suffix in CONLL_SUFFIXES or (len(str(item)) < 4096 and path.is_file()):
                if path.suffix in CONLL_SUFFIXES:
                    fmt = (
                        "conllx"
                        if path.suffix in (".conll", ".conllx") and self.data_info.get("format") == "conllx"
                        else "conllu"
                    )
                    sentences += read_treebank(path, fmt, require_tree=False)
                    continue
                lines = path.read_text(encoding="utf-8").splitlines()
                for line_number, line in enumerate(lines, start=1):
                    if line.strip():
                        sentences.append(
                            sentence_from_tokens(line.split(), len(sentences), str(path), line_number)
                        )
                continue
            sentences.append(sentence_from_tokens(str(item).split(), len(sentences), "<input>", number))
        if not sentences:
            raise DataError(
                "Nothing to parse: give a .conllu file, a text file with one pre-tokenised sentence per "
                "line, or sentences on the command line."
            )
        return sentences

    @torch.no_grad()
    def parse(self, sentences: Sequence[Sentence], batch_size: int = 32) -> list[tuple[list[int], list[str]]]:
        """Heads and relations of each sentence (in order)."""
        if self.encoding is None:
            raise ConfigError("This parser was not loaded from a run directory; use litzoo.load(<run_dir>).")
        device = next(self.parameters()).device
        collate = self.encoding.collate(with_tree=False)
        results: list[tuple[list[int], list[str]]] = []
        was_training = self.training
        self.eval()
        for start in range(0, len(sentences), batch_size):
            chunk = list(sentences[start : start + batch_size])
            samples = self.encoding.encode(chunk, with_tree=False)
            batch = {k: v.to(device) for k, v in collate(samples).items()}
            s_arc, s_rel = self.eval_net(batch)
            heads, rels = self.decode(s_arc, s_rel, batch)
            results += [(h, [self.relations[r] for r in rel]) for h, rel in zip(heads, rels)]
        self.train(was_training)
        return results

    def predict_inputs(
        self, inputs: list[str], batch_size: int = 16, top_k: int | None = None
    ) -> list[dict[str, Any]]:
        """One dict per sentence: its words, predicted heads and relations, and the CoNLL-U block
        (`top_k` does not apply: a parser returns its one best tree)."""
        sentences = self.read_inputs(inputs)
        predictions = []
        for sentence, (heads, deprels) in zip(sentences, self.parse(sentences, batch_size)):
            predictions.append(
                {
                    "words": sentence.forms,
                    "heads": heads,
                    "deprels": deprels,
                    "conllu": format_sentence(sentence, heads, deprels),
                }
            )
        return predictions

    def format_prediction(self, prediction: dict[str, Any]) -> str:
        """The sentence's CoNLL-U block (printed one after the other, they make a valid CoNLL-U file)."""
        return str(prediction["conllu"]).rstrip("\n") + "\n"

    def write_predictions(self, predictions: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
        """Write predicted sentences as one CoNLL-U file (atomically: nothing half-written)."""
        return write_treebank(path, (str(p["conllu"]) for p in predictions))
