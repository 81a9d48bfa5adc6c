"""Machine translation: a Transformer encoder-decoder trained with label-smoothed cross-entropy,
decoded by batched beam search, scored by sacreBLEU on detokenized output (val/bleu, test/bleu, test/chrf).

- **Training**: teacher forcing, label-smoothed cross-entropy over the target subwords (padding
  ignored), the inverse-square-root warmup schedule of Vaswani et al. (``sched=inverse_sqrt``).
- **Validation**: loss, then BLEU of greedy (``val_beam_size: 1``) or beam decoding on the validation
  split (``data.max_val_samples`` keeps it a subset during training), scored over the whole split
  across ranks. **Test**: beam search (``beam_size``, ``length_penalty``, max length
  ``max_len_a * source + max_len_b``); hypotheses are written to ``hypotheses_test.txt`` (and the raw
  references to ``references_test.txt``) in the run directory, the sacreBLEU signature to
  ``sacrebleu_test.json`` and the log, so anyone can re-score them with ``sacrebleu``.
- **Prediction**: ``python -m litzoo.predict <run_dir> "a sentence"`` translates raw text with the run's
  saved vocabulary (``<run_dir>/vocab/``).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from litzoo.errors import CheckpointError, ConfigError
from litzoo.metrics.bleu import CorpusBleu, write_lines
from litzoo.platform.registry import build
from litzoo.tasks.base import EvaluatingTask, Scores, split_model_config
from litzoo.text.beam_search import beam_search, greedy_search
from litzoo.text.subword_vocab import BOS, EOS, PAD, SubwordVocab

log = logging.getLogger("litzoo")


# --- the inverse-square-root schedule (conf/sched/inverse_sqrt.yaml) -------------------------------------
@dataclass
class InverseSqrtFactor:
    """Linear warmup to the peak lr over `warmup_steps`, then lr * sqrt(warmup_steps / step) (fairseq)."""

    warmup_steps: int
    warmup_init_ratio: float = 0.0

    def __call__(self, step: int) -> float:
        step = max(step, 1)
        if step < self.warmup_steps:
            return self.warmup_init_ratio + (1.0 - self.warmup_init_ratio) * step / self.warmup_steps
        return math.sqrt(self.warmup_steps / step)


def inverse_sqrt_with_warmup(
    optimizer: Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    warmup_steps: int = 4000,
    warmup_init_ratio: float = 0.0,
) -> LambdaLR:
    return LambdaLR(optimizer, InverseSqrtFactor(int(warmup_steps), float(warmup_init_ratio)))


def label_smoothed_nll(
    logits: torch.Tensor, target: torch.Tensor, epsilon: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed smoothed loss, summed nll) over non-pad targets (fairseq's label_smoothed_cross_entropy)."""
    lprobs = F.log_softmax(logits.float(), dim=-1).view(-1, logits.size(-1))
    target = target.reshape(-1)
    keep = target != PAD
    lprobs, target = lprobs[keep], target[keep]
    nll = -lprobs.gather(1, target[:, None]).squeeze(1)
    smooth = -lprobs.sum(-1)
    eps_i = epsilon / (lprobs.size(-1) - 1)
    loss = (1.0 - epsilon - eps_i) * nll + eps_i * smooth
    return loss.sum(), nll.sum()


class TranslationTask(EvaluatingTask):
    """Sequence-to-sequence translation over subword vocabularies.

    Args:
        model: the model config (``_target_`` builder + architecture).
        data_info: from the datamodule: vocabulary sizes, fingerprints and (not saved) the vocabularies.
        label_smoothing: epsilon of the smoothed cross-entropy (0.1 in the paper).
        beam_size, length_penalty, length_penalty_kind: test-time beam search (fairseq: ``len ** a``; gnmt).
        val_beam_size: beam for the BLEU of validation during training (1 = greedy, fastest).
        max_len_a, max_len_b: at most ``a * source_length + b`` target subwords.
        bleu_tokenize, bleu_lowercase: sacreBLEU's tokenizer (13a; ``zh``, ``ja-mecab``, ``intl``, ...).
    """

    primary_metric = "bleu"
    table_title = "{name}"

    def __init__(
        self,
        model: dict,
        data_info: dict,
        optim: dict,
        sched: dict | None = None,
        label_smoothing: float = 0.1,
        beam_size: int = 4,
        length_penalty: float = 1.0,
        length_penalty_kind: str = "fairseq",
        val_beam_size: int = 1,
        max_len_a: float = 1.2,
        max_len_b: int = 10,
        bleu_tokenize: str = "13a",
        bleu_lowercase: bool = False,
        save_detections: bool = True,
        no_decay_norm_bias: bool = True,
        ema_decay: float | None = None,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__(optim, sched, no_decay_norm_bias, ema_decay, save_detections, max_grad_norm)
        data_info = dict(data_info)
        self.vocabs = data_info.pop("vocab_objects", None)
        self.save_hyperparameters(
            {
                "model": model,
                "data_info": data_info,
                "label_smoothing": label_smoothing,
                "beam_size": beam_size,
                "length_penalty": length_penalty,
                "length_penalty_kind": length_penalty_kind,
                "val_beam_size": val_beam_size,
                "max_len_a": max_len_a,
                "max_len_b": max_len_b,
                "bleu_tokenize": bleu_tokenize,
                "bleu_lowercase": bleu_lowercase,
                "save_detections": save_detections,
                "no_decay_norm_bias": no_decay_norm_bias,
                "ema_decay": ema_decay,
                "max_grad_norm": max_grad_norm,
                "optim": optim,
                "sched": sched,
            }
        )
        arguments, _ = split_model_config(model)
        arguments.setdefault("max_positions", int(data_info.get("max_positions", 256)) + int(max_len_b) + 2)
        self.net = build(
            arguments,
            src_vocab_size=int(data_info["src_vocab_size"]),
            tgt_vocab_size=int(data_info["tgt_vocab_size"]),
        )
        self.max_positions = int(arguments["max_positions"])
        self.sacrebleu_test: dict[str, Any] | None = None  # the last test's scores and signatures
        self.init_ema()

    # --- training ---------------------------------------------------------------------------------------
    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.net(src, tgt_in)

    def _loss(self, batch: dict[str, Any], net: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
        logits = net(batch["src"], batch["tgt_in"])
        loss, nll = label_smoothed_nll(logits, batch["tgt_out"], self.hparams.label_smoothing)
        tokens = int((batch["tgt_out"] != PAD).sum())
        return loss, nll, tokens

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, nll, tokens = self._loss(batch, self.net)
        n = batch["src"].size(0)
        self.log("train/loss", loss / tokens, prog_bar=True, batch_size=n)
        self.log("train/nll", nll / tokens, batch_size=n)
        return loss / tokens

    # --- decoding ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def translate_ids(self, src: torch.Tensor, beam: int | None = None) -> list[list[int]]:
        """Target ids (no specials) for a padded source batch."""
        net = self.eval_net
        beam = int(beam or self.hparams.beam_size)
        src_len = (src != PAD).sum(1)
        max_len = (self.hparams.max_len_a * src_len.float() + self.hparams.max_len_b).long()
        max_len = max_len.clamp(max=self.max_positions - 2)
        if beam == 1:
            return greedy_search(net.step, net.start_state(src), src.size(0), BOS, EOS, max_len, src.device)
        return beam_search(
            net.step,
            net.reorder,
            net.start_state(src, beam),
            src.size(0),
            beam,
            BOS,
            EOS,
            max_len,
            self.hparams.length_penalty,
            self.hparams.length_penalty_kind,
            src.device,
        )

    def detokenize(self, ids: list[list[int]]) -> list[str]:
        return [self._vocabs()[1].decode(row) for row in ids]

    def _vocabs(self) -> tuple[Any, Any]:
        if self.vocabs is None:
            raise ConfigError("This task has no vocabulary attached; load it with litzoo.load(<run_dir>).")
        return self.vocabs

    # --- evaluation ---------------------------------------------------------------------------------------
    def make_metrics(self, split: str) -> _BleuScores:
        return _BleuScores(CorpusBleu(split, self.hparams.bleu_tokenize, self.hparams.bleu_lowercase))

    def _evaluate(self, batch: dict[str, Any], stage: str, beam: int) -> None:
        loss, nll, tokens = self._loss(batch, self.eval_net)
        n = batch["src"].size(0)
        self.log(f"{stage}/loss", loss / tokens, batch_size=n, sync_dist=True)
        self.log(f"{stage}/nll", nll / tokens, batch_size=n, sync_dist=True)
        hyps = self.detokenize(self.translate_ids(batch["src"], beam))
        self.metrics_for(stage).bleu.update(batch["index"].tolist(), hyps, batch["references"])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.hparams.val_beam_size)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.hparams.beam_size)

    def _finish(self, stage: str) -> None:
        super()._finish(stage)
        result = self.metrics_for(stage).bleu.last
        if result and stage == "test" and not self.trainer.sanity_checking:
            keep = {k: result[k] for k in ("bleu", "chrf", "bleu_signature", "chrf_signature", "sentences")}
            self.sacrebleu_test = keep
            if self.trainer.is_global_zero:
                path = Path(self.trainer.default_root_dir) / "sacrebleu_test.json"
                path.write_text(json.dumps(keep, indent=2) + "\n")
                log.info("sacreBLEU (detokenized, raw references): %s", result["bleu_text"])

    def record_fields(self) -> dict[str, Any]:
        """What run.json keeps beside the metrics: the test score with sacreBLEU's signatures, so that a
        number read from the record says how it was computed (tokenizer, case, smoothing, version)."""
        return {"sacrebleu": self.sacrebleu_test} if self.sacrebleu_test else {}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = ((checkpoint.get("hyper_parameters") or {}).get("data_info") or {}).get("vocab")
        mine = self.hparams["data_info"].get("vocab")
        if saved and mine and saved != mine:
            raise CheckpointError(
                f"The checkpoint was trained with another vocabulary ({saved}) than the one this run reads the "
                f"data with ({mine}), so its ids mean other subwords. Evaluate it with the vocabulary of its own run "
                "(data.vocab_from=<its run dir>, the default for ckpt_path inside a run directory)."
            )

    # --- prediction (python -m litzoo.predict <run_dir> "a sentence") ------------------------------------------
    @staticmethod
    def restore_arguments(hparams: dict[str, Any], run_dir: Any) -> dict[str, Any]:
        """Re-attach the run's saved subword vocabulary (``<run_dir>/vocab/``)."""
        folder = Path(getattr(run_dir, "path", run_dir)) / "vocab"
        data_info = dict(hparams["data_info"])
        if data_info.get("joint_vocab", True) and (folder / "spm.joint.model").is_file():
            joint = SubwordVocab.load(folder / "spm.joint.model")
            vocabs = (joint, joint)
        elif (folder / "spm.src.model").is_file():
            vocabs = (
                SubwordVocab.load(folder / "spm.src.model"),
                SubwordVocab.load(folder / "spm.tgt.model"),
            )
        elif data_info["vocab"]["src"].get("kind") == "hf":
            from litzoo.text.subword_vocab import vocab_from_state

            vocabs = (
                vocab_from_state(data_info["vocab"]["src"]),
                vocab_from_state(data_info["vocab"]["tgt"]),
            )
        else:
            raise CheckpointError(f"{folder} holds no spm.*.model: the run directory lost its vocabulary.")
        for vocab, role in zip(vocabs, ("src", "tgt"), strict=True):
            expected = data_info["vocab"][role].get("fingerprint")
            if expected and vocab.fingerprint != expected:
                raise CheckpointError(
                    f"{folder}: the saved {role} vocabulary (fingerprint {vocab.fingerprint}) is not the one the "
                    f"checkpoint was trained with ({expected}). Restore the run's original vocab/ folder."
                )
        data_info["vocab_objects"] = vocabs
        return {**hparams, "data_info": data_info}

    @torch.no_grad()
    def translate(self, sentences: list[str], batch_size: int = 16, beam: int | None = None) -> list[str]:
        src_vocab = self._vocabs()[0]
        device = next(self.parameters()).device
        out: list[str] = []
        for start in range(0, len(sentences), batch_size):
            chunk = [
                src_vocab.encode(s)[: self.max_positions // 2] + [EOS]
                for s in sentences[start : start + batch_size]
            ]
            src = torch.full((len(chunk), max(map(len, chunk))), PAD, dtype=torch.long)
            for row, ids in enumerate(chunk):
                src[row, : len(ids)] = torch.tensor(ids)
            out += self.detokenize(self.translate_ids(src.to(device), beam))
        return out

    def predict_inputs(
        self, inputs: list[str], batch_size: int = 16, top_k: int | None = None
    ) -> list[dict[str, Any]]:
        return [
            {"source": s, "translation": t}
            for s, t in zip(inputs, self.translate(inputs, batch_size), strict=True)
        ]

    def format_prediction(self, prediction: dict[str, Any]) -> str:
        return str(prediction["translation"])

    def write_predictions(self, predictions: list[dict[str, Any]], path: str | Path) -> Path:
        """``--output out.txt``: one translation per line (what sacreBLEU reads); other names get JSON."""
        path = Path(path).expanduser()
        if path.suffix in (".txt", ".detok", ".hyp") or not path.suffix:
            return write_lines(path, [p["translation"] for p in predictions])
        return super().write_predictions(predictions, path)


class _BleuScores:
    """EvaluatingTask's metric protocol over :class:`CorpusBleu` (values logged as BLEU points, x100)."""

    def __init__(self, bleu: CorpusBleu) -> None:
        self.bleu = bleu

    def reset(self) -> None:
        self.bleu.reset()

    def compute(self) -> Scores:
        result = self.bleu.compute()
        if result is None:
            return Scores(metrics={"bleu": 0.0, "chrf": 0.0})
        hyps, refs, split = result["hypotheses"], result["references"], self.bleu.split

        def save(directory: str | Path, stem: str) -> list[Path]:
            name = "hypotheses_test.txt" if split == "test" else f"hypotheses_{stem.rsplit('_', 1)[-1]}.txt"
            saved = [write_lines(Path(directory) / name, hyps)]
            refs_path = Path(directory) / f"references_{split}.txt"
            if not refs_path.exists():
                saved.append(write_lines(refs_path, refs))
            return saved

        table = f"{result['bleu_text']}\nchrF2 = {result['chrf']:.2f}  {result['chrf_signature']}"
        return Scores(
            metrics={"bleu": result["bleu"], "chrf": result["chrf"]}, tables={"sacreBLEU": table}, save=save
        )
