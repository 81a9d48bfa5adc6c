"""Language modelling: AWD-LSTM, standard LSTMs and GPT-2-style decoders, scored by whole-split perplexity.

The network comes from the model config (:mod:`litzoo.models.language_model`); the batches from
:class:`~litzoo.datamodules.language_model.datamodule.LanguageModelDataModule` (time-major
`inputs`/`targets` `[T, B]`, the window's `start`, and a `mask` where only some targets count).
What this module adds:

- **Hidden state across batches.** A recurrent model's state is carried from one BPTT window to
  the next and detached (truncated backpropagation); it starts from zeros at the start of each
  stream (`start == 0`). Training, validation and test keep separate states. Every checkpoint
  holds the training state of every rank (gathered), so a run resumed mid-epoch continues both
  the stream position (the sampler's) and the hidden state exactly.
- **Loss and regularisation.** Token-mean cross-entropy, plus AWD-LSTM's activation
  regularisation `alpha * mean(dropped_h ** 2)` (AR) and temporal activation regularisation
  `beta * mean((h_t - h_{t-1}) ** 2)` (TAR) on the last layer. With variable BPTT lengths, the
  learning rate of a step is scaled by `seq_len / bptt` (Merity et al.), so short windows do not
  get full-size steps.
- **NT-ASGD** (`ntasgd=true`): plain SGD until the validation loss has not improved on the best of
  all but the last `nonmono` evaluations, then averaging of the weights after every step
  (uniformly, as `torch.optim.ASGD` with `t0=0, lambd=0` and GluonNLP do); validation, test,
  checkpoints' best and generation then use the averaged weights. `lr_plateau_interval` /
  `lr_plateau_factor` multiply the learning rate after that many validations without a new best
  (GluonNLP's `lr_update_interval` / `lr_update_factor`).
- **Perplexity** (:class:`~litzoo.metrics.language_model.PerplexityMeter`): exp of the total NLL over
  the total number of targets of the whole split, summed over ranks, logged as `val/ppl`,
  `val/loss` (nats per token) and `test/ppl`, `test/loss`. Stateless models are evaluated on the
  datamodule's strided sliding windows (only the targets each window is to score count).
- **Neural cache** (`cache: {window, theta, lambdas}`, Grave et al. 2017) at evaluation for
  recurrent models: each target's probability is mixed with a cache over the last `window` hidden
  states of its stream.
- **Generation**: `python -m litzoo.predict <run_dir> "the company said"` continues each prompt by
  sampling (`generation.temperature`, `generation.top_k` or `--top-k`, `max_new_tokens`, a fixed
  `seed`), with the run's saved vocabulary or tokenizer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from litzoo.errors import CheckpointError, ConfigError, DataError
from litzoo.metrics.language_model import PerplexityMeter, cache_target_probabilities, token_nll
from litzoo.platform.registry import build
from litzoo.tasks.base import EvaluatingTask, Scores, split_model_config

log = logging.getLogger("litzoo")

# Keys of a language-model config that describe it to the task and the data rather than to its factory.
MODEL_META_KEYS = ("tokenizer", "input", "recipe")
CHECKPOINT_KEY = "language_model"
GENERATION_DEFAULTS = {"max_new_tokens": 30, "temperature": 1.0, "top_k": None, "seed": 0}


class _SplitPerplexity:
    """`make_metrics` object: whole-split perplexity, its last result kept for NT-ASGD and the plateau rule."""

    def __init__(self, device: torch.device) -> None:
        self.meter = PerplexityMeter(device)
        self.last: dict[str, float] | None = None

    def reset(self) -> None:
        self.meter.reset()

    def update(self, nll_sum: torch.Tensor, count: torch.Tensor) -> None:
        self.meter.update(nll_sum, count)

    def compute(self) -> Scores:
        self.last = self.meter.compute()
        return Scores(metrics={"ppl": self.last["ppl"], "loss": self.last["loss"]})


def detach_state(state: Sequence[torch.Tensor] | None) -> list[torch.Tensor] | None:
    return None if state is None else [s.detach() for s in state]


class LanguageModelTask(EvaluatingTask):
    """Train a language model on BPTT streams or windows; whole-split perplexity; generation.

    Args:
        model: the model config entry (`_target_`, arguments, `tokenizer`, `input`).
        data_info: what the datamodule says about the data (`vocab_size`, `encoding`, `batching`,
            `bptt`); its `tokenizer` entry (the encoding object) is kept for generation and not saved
            (the run directory holds `vocab.json` / `tokenizer/`).
        optim, sched, no_decay_norm_bias, ema_decay, max_grad_norm: see :class:`~litzoo.tasks.base.TaskModule`.
        alpha, beta: AR and TAR weights (AWD-LSTM: 2 and 1; 0 = off).
        ntasgd, nonmono: NT-ASGD and its non-monotone interval (Merity et al.: 5).
        lr_plateau_interval, lr_plateau_factor: multiply the lr by the factor after that many
            validations without a new best (null = off).
        scale_lr_by_seq_len: with variable BPTT, scale each step's lr by `seq_len / bptt`.
        cache: neural-cache settings `{window, theta, lambdas}` for evaluation (null = off).
        generation: sampling defaults `{max_new_tokens, temperature, top_k, seed}`.
        load_pretrained: read a local checkpoint's weights; false when the weights come from a
            litzoo checkpoint (prediction).
    """

    primary_metric = "ppl"

    def __init__(
        self,
        model: dict,
        data_info: dict,
        optim: dict,
        sched: dict | None = None,
        alpha: float = 0.0,
        beta: float = 0.0,
        ntasgd: bool = False,
        nonmono: int = 5,
        lr_plateau_interval: int | None = None,
        lr_plateau_factor: float = 0.5,
        scale_lr_by_seq_len: bool = True,
        cache: dict | None = None,
        generation: dict | None = None,
        max_grad_norm: float | None = None,
        no_decay_norm_bias: bool = False,
        ema_decay: float | None = None,
        load_pretrained: bool = True,
    ) -> None:
        super().__init__(
            optim, sched, no_decay_norm_bias, ema_decay, save_detections=False, max_grad_norm=max_grad_norm
        )
        self.encoding = data_info.get("tokenizer")
        data_info = {
            k: v for k, v in data_info.items() if k != "tokenizer"
        }  # saved: the run directory has it
        self.save_hyperparameters()
        arguments, _ = split_model_config(model)
        arguments = {k: v for k, v in arguments.items() if k not in MODEL_META_KEYS}
        self.net = build(arguments, vocab_size=int(data_info["vocab_size"]), load_pretrained=load_pretrained)
        self.stateful = bool(getattr(self.net, "stateful", False))
        self.vocab_size = int(data_info["vocab_size"])
        self.bptt = int(data_info.get("bptt") or 1)
        self.variable_bptt = bool(data_info.get("variable_bptt", False))
        self.alpha, self.beta = float(alpha), float(beta)
        self.nonmono, self.scale_lr_by_seq_len = int(nonmono), bool(scale_lr_by_seq_len)
        self.lr_plateau_interval, self.lr_plateau_factor = lr_plateau_interval, float(lr_plateau_factor)
        self.cache = dict(cache) if cache else None
        if self.cache is not None:
            if not self.stateful:
                raise ConfigError(
                    f"task.cache (the neural cache) reads a recurrent model's hidden states; "
                    f"model={model.get('name')} has none. Use it with model=awd_lstm or lstm_lm."
                )
            unknown = sorted(set(self.cache) - {"window", "theta", "lambdas"})
            if unknown:
                raise ConfigError(
                    f"task.cache has unknown keys {unknown}; it takes window, theta and lambdas."
                )
            self.cache = {
                "window": int(self.cache.get("window", 2000)),
                "theta": float(self.cache.get("theta", 0.662)),
                "lambdas": float(self.cache.get("lambdas", 0.1279)),
            }
        self.generation = {**GENERATION_DEFAULTS, **(generation or {})}
        self.init_ema()
        self.averaged: AveragedModel | None = None
        if ntasgd:
            self.averaged = AveragedModel(self.net)
            self.averaged.requires_grad_(False)
        self.register_buffer("asgd_active", torch.zeros((), dtype=torch.bool))
        self._train_state: list[torch.Tensor] | None = None
        self._eval_state: dict[str, Any] = {}
        self._cache_history: dict[str, Any] = {}
        self._lr_factor = 1.0
        self.val_history: list[float] = []
        self.best_val = math.inf
        self.plateau_count = 0

    # --- the model --------------------------------------------------------------------------------
    @property
    def eval_net(self) -> nn.Module:
        if self.averaged is not None and bool(self.asgd_active):
            return self.averaged.module
        return super().eval_net

    def forward(self, inputs: torch.Tensor, state: list[torch.Tensor] | None = None) -> Any:
        return self.eval_net(inputs, state)

    def _carried(
        self, batch: Mapping[str, Any], state: list[torch.Tensor] | None
    ) -> list[torch.Tensor] | None:
        """The state to start this window from: none for stateless models and at a stream's start."""
        if not self.stateful or state is None or int(batch["start"]) == 0:
            return None
        device = batch["inputs"].device
        return [s.to(device) for s in state]

    # --- training ---------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch["inputs"], batch["targets"]
        out = self.net(inputs, self._carried(batch, self._train_state))
        loss = F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), targets.reshape(-1))
        total = loss
        if self.alpha and out.dropped is not None:
            total = total + self.alpha * out.dropped.pow(2).mean()
        if self.beta and out.hidden is not None and out.hidden.shape[0] > 1:
            total = total + self.beta * (out.hidden[1:] - out.hidden[:-1]).pow(2).mean()
        self._train_state = detach_state(out.state) if self.stateful else None
        tokens = targets.numel()
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=tokens)
        self.log("train/ppl", torch.exp(loss.detach()), on_step=True, on_epoch=False, batch_size=tokens)
        return total

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        variable = self.variable_bptt and self.scale_lr_by_seq_len and batch["inputs"].shape[0] != self.bptt
        self._lr_factor = batch["inputs"].shape[0] / self.bptt if variable else 1.0

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        factor = self._lr_factor
        saved = [group["lr"] for group in optimizer.param_groups]
        if factor != 1.0:  # this window's share of a full-length step (AWD-LSTM's variable BPTT)
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] * factor
        try:
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        finally:
            for group, lr in zip(optimizer.param_groups, saved):
                group["lr"] = lr
        if self.averaged is not None and bool(self.asgd_active):
            self.averaged.update_parameters(self.net)

    # --- evaluation -------------------------------------------------------------------------------
    def make_metrics(self, split: str) -> _SplitPerplexity:
        return _SplitPerplexity(self.device)

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._eval_state.pop("val", None)
        self._cache_history.pop("val", None)

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self._eval_state.pop("test", None)
        self._cache_history.pop("test", None)

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        inputs, targets, mask = batch["inputs"], batch["targets"], batch.get("mask")
        out = self.eval_net(inputs, self._carried(batch, self._eval_state.get(stage)))
        if self.stateful:
            self._eval_state[stage] = detach_state(out.state)
        if self.cache is not None:
            history = None if int(batch["start"]) == 0 else self._cache_history.get(stage)
            vocab_probs = torch.softmax(out.logits.float(), -1).gather(-1, targets[..., None]).squeeze(-1)
            probs, self._cache_history[stage] = cache_target_probabilities(
                vocab_probs,
                out.hidden,
                targets,
                history,
                self.cache["window"],
                self.cache["theta"],
                self.cache["lambdas"],
            )
            nll = -torch.log(probs.double())
            nll_sum = nll.sum() if mask is None else nll[mask].sum()
            count = torch.tensor(nll.numel()) if mask is None else mask.sum()
        else:
            nll_sum, count = token_nll(out.logits, targets, mask)
        self.metrics_for(stage).update(nll_sum, count)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.trainer.sanity_checking:
            return
        scores = self.metrics_for("val").last
        if scores is not None and math.isfinite(scores["loss"]):
            self._after_validation(scores["loss"])

    def _after_validation(self, loss: float) -> None:
        """NT-ASGD's switch and the plateau lr rule, from this validation's loss (every rank has the same)."""
        if self.averaged is not None and not bool(self.asgd_active):
            if len(self.val_history) > self.nonmono and loss > min(self.val_history[: -self.nonmono]):
                self.averaged.n_averaged.zero_()
                self.averaged.update_parameters(self.net)  # the average starts from the current weights
                self.asgd_active.fill_(True)
                log.info(
                    "NT-ASGD: validation loss %.4f did not improve on the best before the last %d evaluations; "
                    "averaging the weights from now on (epoch %d)",
                    loss,
                    self.nonmono,
                    self.current_epoch,
                )
            self.val_history.append(loss)
        if loss < self.best_val:
            self.best_val, self.plateau_count = loss, 0
        elif self.lr_plateau_interval:
            self.plateau_count += 1
            if self.plateau_count % int(self.lr_plateau_interval) == 0:
                self._scale_learning_rate(self.lr_plateau_factor)
                self.plateau_count = 0

    def _scale_learning_rate(self, factor: float) -> None:
        for config in self.trainer.lr_scheduler_configs:  # a LambdaLR recomputes lr from its base_lrs
            config.scheduler.base_lrs = [lr * factor for lr in config.scheduler.base_lrs]
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] *= factor
                if "initial_lr" in group:
                    group["initial_lr"] *= factor
        log.info(
            "No new best validation loss for %d evaluations: learning rate x %g",
            self.lr_plateau_interval,
            factor,
        )

    # --- checkpoints --------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = self._train_state
        world = self.trainer.world_size if self._trainer is not None else 1
        if state is not None and world > 1:  # every rank saves (dump_checkpoint runs on all): gather theirs
            gathered = [self.all_gather(s).cpu() for s in state]
        else:
            gathered = None if state is None else [s.cpu()[None] for s in state]
        checkpoint[CHECKPOINT_KEY] = {
            "train_state": gathered,
            "world_size": world,
            "val_history": list(self.val_history),
            "best_val": self.best_val,
            "plateau_count": self.plateau_count,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved_info = (checkpoint.get("hyper_parameters") or {}).get("data_info") or {}
        saved, mine = saved_info.get("encoding") or {}, self.hparams["data_info"]["encoding"]
        if saved and (saved.get("vocab_size"), saved.get("fingerprint")) != (
            mine["vocab_size"],
            mine["fingerprint"],
        ):
            where = getattr(self._trainer, "ckpt_path", None) if self._trainer is not None else None
            raise CheckpointError(
                f"The checkpoint {where or ''} was trained with a {saved.get('kind')} vocabulary of "
                f"{saved.get('vocab_size')} entries (fingerprint {saved.get('fingerprint')}), but this run's data is "
                f"encoded with {mine['vocab_size']} (fingerprint {mine['fingerprint']}): its ids mean other words. "
                "Evaluate or continue it with the data it was trained on (its run's .hydra/config.yaml), or train anew."
            )
        extra = checkpoint.get(CHECKPOINT_KEY) or {}
        self.val_history = list(extra.get("val_history", []))
        self.best_val = float(extra.get("best_val", math.inf))
        self.plateau_count = int(extra.get("plateau_count", 0))
        state = extra.get("train_state")
        rank = self.trainer.global_rank if self._trainer is not None else 0
        if state is not None and rank < state[0].shape[0]:
            self._train_state = [s[rank] for s in state]
        else:
            self._train_state = None

    # --- generation (python -m litzoo.predict <run_dir> "<prompt>") ---------------------------------
    @staticmethod
    def restore_arguments(hparams: dict[str, Any], run_dir: Any) -> dict[str, Any]:
        """Re-attach the run's saved vocabulary/tokenizer and build the model without pretrained weights."""
        from litzoo.text.lm_encoding import TOKENIZER_DIR, LMEncoding

        folder = Path(getattr(run_dir, "path", run_dir))
        data_info = dict(hparams["data_info"])
        data_info["tokenizer"] = LMEncoding.load(folder, data_info["encoding"])
        model = dict(hparams["model"])
        if model.get("pretrained") and (folder / TOKENIZER_DIR / "config.json").is_file():
            model["pretrained"] = str(
                folder / TOKENIZER_DIR
            )  # the architecture; weights come from the checkpoint
        return {**hparams, "model": model, "data_info": data_info, "load_pretrained": False}

    @torch.no_grad()
    def generate(
        self,
        prompt_ids: Sequence[int],
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """Sample a continuation of `prompt_ids` (temperature 0: greedy), one token at a time."""
        net = self.eval_net
        device = next(self.parameters()).device
        context = int(getattr(net, "context_size", 0) or 0)
        tokens = list(prompt_ids)
        state = None
        feed = torch.tensor(tokens, device=device)[:, None]
        produced: list[int] = []
        for _ in range(max_new_tokens):
            if not self.stateful and context:
                feed = feed[-context:]
            out = net(feed, state)
            logits = out.logits[-1, 0].float()
            if temperature <= 0:
                token = int(logits.argmax())
            else:
                logits = logits / temperature
                if top_k:
                    kth = torch.topk(logits, min(int(top_k), logits.numel())).values[-1]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = torch.softmax(logits, -1).cpu()
                token = int(torch.multinomial(probs, 1, generator=generator))
            produced.append(token)
            if self.stateful:
                state, feed = out.state, torch.tensor([[token]], device=device)
            else:
                feed = torch.cat([feed, torch.tensor([[token]], device=device)])
        return produced

    def predict_inputs(
        self,
        inputs: list[str],
        batch_size: int = 16,
        top_k: int | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> list[dict[str, Any]]:
        """A sampled continuation of each prompt (`top_k`, `temperature`, ... default to `task.generation`)."""
        if self.encoding is None:
            raise ConfigError(
                "This task has no vocabulary/tokenizer attached; load it with litzoo.load(<run_dir>)."
            )
        settings = dict(self.generation)
        for key, value in (
            ("top_k", top_k),
            ("max_new_tokens", max_new_tokens),
            ("temperature", temperature),
            ("seed", seed),
        ):
            if value is not None:
                settings[key] = value
        generator = torch.Generator().manual_seed(int(settings["seed"]))
        results = []
        for index, prompt in enumerate(inputs):
            if not str(prompt).strip():
                raise DataError(
                    f'Input {index + 1} is empty; give a prompt to continue, e.g. "the company said".'
                )
            ids = self.encoding.encode_text(str(prompt))
            if not ids:
                raise DataError(
                    f"Input {index + 1} ({prompt!r}) encodes to no tokens; give a prompt with words in it."
                )
            unknown = 0
            if self.encoding.vocab is not None:
                unknown = sum(i == self.encoding.vocab.unk_id for i in ids)
            produced = self.generate(
                ids,
                int(settings["max_new_tokens"]),
                float(settings["temperature"]),
                settings["top_k"],
                generator,
            )
            results.append(
                {
                    "prompt": str(prompt),
                    "continuation": self.encoding.decode(produced),
                    "tokens": len(produced),
                    "unknown_prompt_tokens": unknown,
                }
            )
        return results

    def format_prediction(self, prediction: dict[str, Any]) -> str:
        continuation = " ".join(prediction["continuation"].split("\n"))
        return f"{prediction['prompt']} >> {continuation.strip()}"
