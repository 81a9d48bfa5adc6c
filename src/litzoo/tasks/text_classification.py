"""Text classification: single sentences or sentence pairs, classes or a score (STS-B), textCNN or an encoder.

One task for all of GLUE, TREC, IMDB and users' tables. What varies comes from the data
(`data_info`, see `TextClassificationDataModule.info`) and the model config:

- pairs are the same task with two text fields (the tokenizer joins them);
- `num_labels == 1` (no label set) makes it regression: MSE loss, predicted scores,
  Pearson/Spearman; otherwise cross-entropy (optional label smoothing) and class probabilities;
- metrics are the dataset's (`accuracy`, `f1` of the positive class, `mcc`, `pearson`,
  `spearman`; torchmetrics), logged as `val/<metric>` and `test/<metric>` for the first
  evaluation split and `<stage>/<split>/<metric>` for the others (MNLI's dev_mismatched);
- the model family follows the model config's `tokenizer.kind`: `vocab` builds a textCNN
  (`litzoo.models.text_classification.create_textcnn`, Kim's max-norm constraint applied after every
  optimizer step), `hf` a pretrained encoder with a head
  (`litzoo.models.text_encoder.create_text_classifier`).

Fine-tuning recipe: AdamW over groups without weight decay on LayerNorm weights and biases,
optional layer-wise learning-rate decay (`layer_decay`), gradient clipping by norm
(`max_grad_norm`, unless `trainer.gradient_clip_val` is set), and `sched=linear` (linear
warmup then linear decay). Each model config's `recipe` holds its usual values, which the
task config applies.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from litzoo.errors import CheckpointError, ConfigError, DataError
from litzoo.metrics.text import build_text_metrics, predictions_from_outputs
from litzoo.platform.registry import build
from litzoo.tasks.base import ExportSpec, TaskModule

# Keys of a text model config that describe it to the task rather than to its factory.
MODEL_META_KEYS = ("tokenizer", "recipe")


def build_text_model(
    model: dict, data_info: dict, vocab: Any = None, load_pretrained: bool = True
) -> tuple[nn.Module, dict]:
    """The network for `model` (a registry entry) on the data described by `data_info`.

    Returns the network and the model config with the values its factory settled on
    (textCNN's `embed_dim` read from the vectors, an encoder's `auto` pooling), so that a
    checkpoint's hyper-parameters rebuild exactly this architecture.
    """
    encoding = data_info["encoding"]
    kind = encoding["kind"]
    declared = (model.get("tokenizer") or {}).get("kind")
    if declared is not None and declared != kind:
        raise ConfigError(
            f"Tokenizer/model mismatch: model={model.get('name')} reads `{declared}` input but the data was tokenized "
            f"as `{kind}` (data.tokenizer). Leave data.tokenizer to task=text_classification, which sets it from "
            "the model's tokenizer entry."
        )
    arguments = {k: v for k, v in model.items() if k not in MODEL_META_KEYS}
    num_labels = int(data_info["num_labels"])
    if kind == "vocab":
        net = build(
            arguments,
            num_labels=num_labels,
            vocab_size=int(encoding["vocab_size"]),
            pad_id=int(encoding["pad_id"]),
            vocab=vocab,
            load_pretrained=load_pretrained,
        )
        settled = {"embed_dim": int(net.embedding.embedding_dim)}
    else:
        net = build(
            arguments,
            num_labels=num_labels,
            tokenizer=encoding["pretrained"],
            max_length=encoding["max_length"],
            load_pretrained=load_pretrained,
        )
        settled = {"pooling": net.pooling}
    return net, {**model, **settled}


def metric_prefix(stage: str, index: int, split_name: str) -> str:
    """`val/` for the first evaluation split, `val/<split>/` for the others."""
    return f"{stage}/" if index == 0 else f"{stage}/{split_name}/"


class TextClassificationTask(TaskModule):
    """Classify texts or text pairs into `data_info["num_labels"]` classes, or score them (1 label).

    Args:
        model: the model config entry (`_target_`, arguments, `tokenizer`, `recipe`).
        data_info: what the datamodule says about the data (labels, metrics, evaluation splits,
            the text encoding). Its `vocab` entry (a `Vocab`, for textCNN) is used to look up word
            vectors and is not saved with the hyper-parameters: the run directory holds it.
        optim, sched, no_decay_norm_bias, ema_decay: see `TaskModule`.
        label_smoothing: smoothing of the training targets (classification).
        layer_decay: layer-wise learning-rate decay of transformer encoders (1 = off): the
            head keeps `lr`, the top layer gets `lr * d`, ..., the embeddings `lr * d ** (L + 1)`.
        max_grad_norm: clip the gradients' global norm to this (null = off) unless
            `trainer.gradient_clip_val` is set.
        load_pretrained: read pretrained weights/word vectors; false when the weights come
            from a litzoo checkpoint (prediction).
    """

    def __init__(
        self,
        model: dict,
        data_info: dict,
        optim: dict,
        sched: dict | None = None,
        label_smoothing: float = 0.0,
        layer_decay: float = 1.0,
        max_grad_norm: float | None = None,
        no_decay_norm_bias: bool = True,
        ema_decay: float | None = None,
        load_pretrained: bool = True,
    ) -> None:
        super().__init__(optim, sched, no_decay_norm_bias, ema_decay, max_grad_norm)
        # Objects, not saved: the run directory holds them (vocab.json or tokenizer/); `text_encoding` is
        # what prediction reads new texts with (restore_arguments loads it from there).
        vocab, self.text_encoding = data_info.get("vocab"), data_info.get("text_encoding")
        data_info = {k: v for k, v in data_info.items() if k not in ("vocab", "text_encoding")}
        self.kind = data_info["encoding"]["kind"]
        if layer_decay != 1.0 and self.kind != "hf":
            raise ConfigError(
                f"task.layer_decay={layer_decay} applies to transformer encoders, which have layers; "
                "textCNN has none. Leave task.layer_decay=1.0 with model=textcnn."
            )
        self.is_regression = bool(data_info["is_regression"])
        self.num_labels = int(data_info["num_labels"])
        self.label_smoothing, self.layer_decay = label_smoothing, layer_decay
        self.net, model = build_text_model(model, data_info, vocab, load_pretrained)
        self.save_hyperparameters()  # with the settled model config and without the vocabulary
        self.init_ema()

        metrics = list(data_info["metrics"])

        def per_split(stage: str, names: list[str]) -> tuple[nn.ModuleList, nn.ModuleList]:
            collections = [
                build_text_metrics(
                    metrics,
                    self.num_labels,
                    prefix=metric_prefix(stage, i, name),
                    is_regression=self.is_regression,
                )
                for i, name in enumerate(names)
            ]
            return nn.ModuleList(collections), nn.ModuleList(MeanMetric() for _ in names)

        self.val_metrics, self.val_losses = per_split("val", list(data_info["val_names"]))
        self.test_metrics, self.test_losses = per_split("test", list(data_info["test_names"]))
        self.val_names, self.test_names = list(data_info["val_names"]), list(data_info["test_names"])
        self.train_acc = None if self.is_regression else MulticlassAccuracy(self.num_labels, average="micro")

    # --- the model --------------------------------------------------------------------------------
    def outputs(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits `[B, num_labels]` (a score `[B, 1]` for regression) of a collated batch."""
        if self.kind == "vocab":
            return net(batch["input_ids"], batch["length"])
        return net(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.outputs(self.eval_net, batch)

    def loss(self, outputs: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        if self.is_regression:
            return F.mse_loss(outputs.reshape(-1).float(), labels.float())
        return F.cross_entropy(outputs, labels, label_smoothing=label_smoothing)

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities `[B, C]`, or the predicted scores `[B]` for regression."""
        return outputs.reshape(-1).float() if self.is_regression else outputs.float().softmax(dim=-1)

    # --- steps ------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        outputs = self.outputs(self.net, batch)
        labels = batch["label"]
        loss = self.loss(outputs, labels, self.label_smoothing)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(labels))
        if self.train_acc is not None:
            self.train_acc(outputs.argmax(dim=-1), labels)
            self.log("train/accuracy", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def _evaluate(
        self, batch: dict[str, torch.Tensor], stage: str, metrics: nn.ModuleList, losses: nn.ModuleList
    ) -> None:
        outputs = self.outputs(self.eval_net, batch)
        labels, which = batch["label"], batch["split"]
        predictions = predictions_from_outputs(outputs, self.is_regression)
        # A batch may mix evaluation splits (MNLI matched/mismatched): each split keeps its own metrics.
        for index in torch.unique(which).tolist():
            mask = which == index
            metrics[index].update(predictions[mask], labels[mask])
            losses[index].update(self.loss(outputs[mask], labels[mask]), weight=int(mask.sum()))
        # Every split is logged at every step, in order: under DDP each rank must compute (and so
        # synchronise) the same metrics in the same order at the epoch's end, whatever it saw.
        for index, (collection, mean_loss) in enumerate(zip(metrics, losses)):
            show = stage == "val" and index == 0
            self.log(
                f"{collection.prefix}loss",
                mean_loss,
                on_step=False,
                on_epoch=True,
                prog_bar=show,
                add_dataloader_idx=False,
            )
            self.log_dict(collection, on_step=False, on_epoch=True, prog_bar=show, add_dataloader_idx=False)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics, self.val_losses)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics, self.test_losses)

    def predict_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> torch.Tensor:
        return self.probabilities(self(batch))

    # --- prediction from texts (python -m litzoo.predict <run_dir> <texts>) ------------------------
    @staticmethod
    def restore_arguments(hparams: dict[str, Any], run_dir: Any) -> dict[str, Any]:
        """The run's own vocabulary or tokenizer (and the encoder's config saved beside it): prediction reads
        text as training did, and rebuilds the encoder without its original checkpoint folder (the weights
        come from the litzoo checkpoint)."""
        from litzoo.datamodules.text_classification.datamodule import TOKENIZER_DIR, TextEncoding

        data_info = dict(hparams.get("data_info") or {})
        if "model" not in hparams or "encoding" not in data_info:
            raise CheckpointError(
                f"The checkpoint of {run_dir.path} is not a text-classification checkpoint (its hyper-parameters "
                "lack the model and the text encoding). Give the run directory of a task=text_classification run."
            )
        encoding = TextEncoding.load(run_dir.path, data_info["encoding"])
        model = dict(hparams["model"])
        if encoding.kind == "vocab":
            data_info["vocab"] = encoding.vocab
        else:
            folder = str(run_dir.artifact(TOKENIZER_DIR))
            model["pretrained"] = folder
            data_info["encoding"] = {**data_info["encoding"], "pretrained": folder}
        data_info["text_encoding"] = encoding
        return {**hparams, "model": model, "data_info": data_info, "load_pretrained": False}

    def predict_inputs(
        self, inputs: list[str], batch_size: int = 64, top_k: int | None = None
    ) -> list[dict[str, Any]]:
        """Class probabilities of each text (pair tasks: ``"first<TAB>second"`` or a ``(first, second)``
        tuple), tokenized as in training: ``{"text", "text_pair", "label", "score", "probabilities"}``;
        regression: the predicted score as ``label`` and ``score``, ``probabilities`` None. `top_k` keeps
        only the k most probable classes in ``probabilities``."""
        if self.text_encoding is None:
            raise CheckpointError(
                "This task was not loaded from a run directory, so it has no tokenizer to read texts with. "
                "Load it with litzoo.load(<run_dir>)."
            )
        is_pair = bool(self.hparams["data_info"]["is_pair"])
        examples = [self._example(i, item, is_pair) for i, item in enumerate(inputs)]
        collate = self.text_encoding.collate(label_dtype=None, with_split=False)
        rows: list[dict[str, Any]] = []
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            samples, _ = self.text_encoding.encode(chunk)
            batch = {key: value.to(self.device) for key, value in collate(samples).items()}
            with torch.no_grad():
                values = self.probabilities(self(batch)).cpu()
            rows += [self._prediction(example, row, top_k) for example, row in zip(chunk, values)]
        return rows

    def _example(self, index: int, item: str | tuple[str, str], is_pair: bool) -> Any:
        from litzoo.text.examples import TextExample

        where = f"Input {index + 1}"
        parts = (
            [str(p) for p in item] if not isinstance(item, str) else item.split("\t") if is_pair else [item]
        )
        if is_pair and (len(parts) != 2 or not all(p.strip() for p in parts)):
            raise DataError(
                f"{where}: this model classifies sentence pairs; write each input as first<TAB>second "
                f"(found {len(parts)} part(s)), or give (first, second) tuples in Python."
            )
        if not is_pair and len(parts) != 1:
            raise DataError(f"{where} is a pair, but this model classifies single texts; give one text.")
        if not all(p.strip() for p in parts):
            raise DataError(f"{where} is empty; give a text to classify.")
        first, second = parts[0].strip(), (parts[1].strip() if is_pair else None)
        return TextExample(first, second, None, f"input-{index}")

    def _prediction(self, example: Any, values: torch.Tensor, top_k: int | None) -> dict[str, Any]:
        row: dict[str, Any] = {"text": example.text_a, "text_pair": example.text_b}
        if self.is_regression:
            return {**row, "label": float(values), "score": float(values), "probabilities": None}
        info = self.hparams["data_info"]
        names = [str(n) for n in (info.get("class_names") or info.get("label_names"))]
        ranked = sorted(
            zip(names, values.tolist()), key=lambda pair: -pair[1]
        )  # stable: ties keep class order
        best, score = ranked[0]
        probabilities = dict(ranked[:top_k]) if top_k else dict(zip(names, values.tolist()))
        return {**row, "label": best, "score": score, "probabilities": probabilities}

    def format_prediction(self, prediction: dict[str, Any]) -> str:
        """``<label>\t<probability>\t<text>`` (regression: ``<score>\t<text>``; pairs: both texts, tab-separated)."""
        text = (
            prediction["text"]
            if prediction["text_pair"] is None
            else f"{prediction['text']}\t{prediction['text_pair']}"
        )
        if prediction["probabilities"] is None:
            return f"{prediction['score']:.4f}\t{text}"
        return f"{prediction['label']}\t{prediction['score']:.4f}\t{text}"

    # --- export (python -m litzoo.export <run_dir>) -------------------------------------------------
    def export_spec(self) -> ExportSpec:
        """Token ids ``[B, T]`` (+ ``attention_mask``/``token_type_ids`` for an encoder, ``length [B]`` for
        textCNN), batch and sequence length dynamic -> ``logits [B, num_labels]`` (a score for regression).
        Tokenization stays outside the graph: the run's tokenizer files (or ``vocab.json``) are copied
        beside it, with what ``preprocessing.json`` says about using them. int8 is dynamic (weights)."""
        from litzoo.datamodules.text_classification.datamodule import TOKENIZER_DIR, VOCAB_FILE

        encoding = self.hparams["data_info"]["encoding"]
        if self.kind == "vocab":
            names: tuple[str, ...] = ("input_ids", "length")
        else:
            names = ("input_ids", "attention_mask")
            if (
                self.text_encoding is not None
                and "token_type_ids" in self.text_encoding.tokenizer.model_input_names
            ):
                names += ("token_type_ids",)
        module = TextLogits(self.eval_net, self.kind).eval()
        files: dict[str, str] = {}
        run_dir = getattr(self, "run_dir", None)
        if run_dir is not None:
            source = run_dir.artifact(VOCAB_FILE if self.kind == "vocab" else TOKENIZER_DIR)
            if source.exists():
                files[source.name] = str(source)
        info = self.hparams["data_info"]
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}}
        axes.update(
            {n: {0: "batch", 1: "sequence"} for n in names if n in ("attention_mask", "token_type_ids")}
        )
        if "length" in names:
            axes["length"] = {0: "batch"}
        return ExportSpec(
            module=module,
            calls=lambda batch: [tuple(batch[n] for n in names)],
            labels=None if self.is_regression else (lambda batch: batch["label"]),
            input_names=names,
            output_names=("logits",),
            dynamic_axes=axes,
            preprocessing={
                "inputs": {n: "int64 [batch, sequence]" if n != "length" else "int64 [batch]" for n in names},
                "tokenizer": {
                    "kind": self.kind,
                    "files": sorted(files),
                    "max_length": encoding.get("max_length"),
                    "lowercase": encoding.get("lowercase"),
                    "pad_id": encoding.get("pad_id"),
                    "pairs": bool(info["is_pair"]),
                    "how": "Hugging Face tokenizer: AutoTokenizer.from_pretrained(<export dir>/tokenizer), "
                    "truncation to max_length, right padding"
                    if self.kind == "hf"
                    else "litzoo word tokenizer + vocab.json (litzoo.text.vocab.Vocab), lengths before padding",
                },
                "output": {"name": "logits", "regression": self.is_regression, "softmax": "not applied"},
                "labels": [str(n) for n in (info.get("class_names") or info.get("label_names") or [])],
            },
            files=files,
            int8="dynamic",
            atol=1e-4,
        )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint whose model read text another way (clearer than a tensor size mismatch)."""
        saved = ((checkpoint.get("hyper_parameters") or {}).get("data_info") or {}).get("encoding") or {}
        mine = self.hparams["data_info"]["encoding"]
        if saved and (saved.get("kind"), saved.get("vocab_size")) != (mine["kind"], mine["vocab_size"]):
            raise CheckpointError(
                f"The checkpoint's model reads {saved.get('kind')} ids from a vocabulary of {saved.get('vocab_size')} "
                f"entries, but this run's data is tokenized into {mine['vocab_size']} {mine['kind']} ids. Evaluate it "
                "with the data, model and tokenizer settings it was trained with (its run's .hydra/config.yaml)."
            )

    # --- optimization -----------------------------------------------------------------------------
    def param_groups(self) -> list[dict[str, Any]] | Any:
        if self.kind != "hf":
            return super().param_groups()
        from litzoo.models.text_encoder import encoder_param_groups

        weight_decay = float(self.optim_cfg.get("weight_decay", 0.0) or 0.0)
        groups = encoder_param_groups(
            self.net, lr=float(self.optim_cfg["lr"]), weight_decay=weight_decay, layer_decay=self.layer_decay
        )
        if not self.no_decay_norm_bias:
            for group in groups:
                group["weight_decay"] = weight_decay
        if self.layer_decay == 1.0:  # every layer has the same lr: two groups keep the lr log readable
            groups = _merge_by_weight_decay(groups)
        return groups

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        apply_max_norm = getattr(self.net, "apply_max_norm_", None)
        if apply_max_norm is not None:  # Kim (2014): bound the output layer's row norms after each update
            apply_max_norm()


class TextLogits(nn.Module):
    """A text classifier as plain tensors in, logits out, in the export's input order."""

    def __init__(self, net: nn.Module, kind: str) -> None:
        super().__init__()
        self.net, self.kind = net, kind

    def forward(
        self, input_ids: torch.Tensor, second: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`second` is textCNN's `length` or an encoder's `attention_mask`."""
        if self.kind == "vocab":
            return self.net(input_ids, second)
        return self.net(input_ids, second, token_type_ids)


def _merge_by_weight_decay(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[float, dict[str, Any]] = {}
    for group in groups:
        target = merged.setdefault(
            group["weight_decay"],
            {
                "params": [],
                "param_names": [],
                "lr": group["lr"],
                "weight_decay": group["weight_decay"],
                "name": "decay" if group["weight_decay"] else "no_decay",
            },
        )
        target["params"] += group["params"]
        target["param_names"] += group["param_names"]
    return list(merged.values())
