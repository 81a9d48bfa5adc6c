"""Language modelling through litzoo versus a plain PyTorch loop, side by side: tokens/s and perplexity.

Both sides train the same 2-layer LSTM (Zaremba's small preset, litzoo's `create_lstm_lm`, built
from the same seed) on the same BPTT batches of the embedded Shakespeare corpus (20 streams x 35
steps, the hidden state carried and detached), with the same SGD (lr 1, gradient norm clipped at
5), for the same steps:

- **throughput**: tokens/s of the timed steps after the warm-up ones. The litzoo side is the
  real `train.py` path: the config composed by Hydra, `litzoo.platform.runner.run` with its
  Trainer, task, datamodule (reader, vocabulary, BPTT sampler), logger, callbacks and run record;
  the plain side is the loop of the PyTorch word_language_model example. The sides alternate to
  spread machine noise; an untimed loop warms the process up first.
- **perplexity**: validation perplexity (10 streams, BPTT 35, whole split) after one epoch
  (`--quick`: 40 steps) on both sides: the same computation, so it should agree to float noise.

    python benchmarks/bench_language_model.py            # 5 warm-up + 40 timed steps, 3 rounds; 1-epoch ppl
    python benchmarks/bench_language_model.py --quick    # fewer steps, one round
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from litzoo.datamodules.language_model.bptt import stream_matrix  # noqa: E402
from litzoo.datamodules.language_model.datamodule import ShakespeareDataModule  # noqa: E402
from litzoo.models.language_model import create_lstm_lm  # noqa: E402

BATCH, BPTT, LR, CLIP, SEED = 20, 35, 1.0, 5.0, 42
GENRES = ["tragedies", "roman"]


class StepTimer(pl.Callback):
    """Times the training steps after the warm-up ones."""

    warmup = 0
    start = end = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()


TIMER = StepTimer()


def step_timer() -> StepTimer:
    return TIMER


def corpus(data_dir: Path) -> tuple[np.ndarray, np.ndarray, int]:
    # The data config's corpus (conf/data/shakespeare.yaml): the same folder, genres and vocabulary.
    dm = ShakespeareDataModule(root=data_dir / "shakespeare", genres=GENRES, tokenizer={"kind": "word"})
    ids = dm.prepare()
    return ids["train"], ids["val"], dm.encoding.vocab_size


def plain_loop(
    train: np.ndarray, val: np.ndarray, vocab: int, warmup: int, steps: int
) -> tuple[float, float]:
    """The PyTorch word_language_model loop; returns (tokens/s of the timed steps, val ppl after them)."""
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    model = create_lstm_lm(vocab, preset="small")
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    data = torch.from_numpy(stream_matrix(train, BATCH).astype(np.int64))  # [T, B], GluonNLP/PyTorch batchify
    model.train()
    state, start = None, 0.0
    for step, i in enumerate(range(0, data.shape[0] - 1, BPTT)):
        if step == warmup:
            start = time.perf_counter()
        if steps is not None and step == warmup + steps:
            break
        inputs, targets = data[i : i + BPTT], data[i + 1 : i + 1 + BPTT]
        inputs = inputs[: len(targets)]
        out = model(inputs, None if state is None else [s.detach() for s in state])
        state = out.state
        loss = F.cross_entropy(out.logits.reshape(-1, vocab), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        loss.item()  # the platform logs the loss every step, which syncs the same way
    elapsed = time.perf_counter() - start
    timed = (step + 1 - warmup) if steps is None else steps
    return timed * BATCH * BPTT / elapsed, evaluate(model, val, vocab)


@torch.no_grad()
def evaluate(model: torch.nn.Module, ids: np.ndarray, vocab: int) -> float:
    model.eval()
    data = torch.from_numpy(stream_matrix(ids, 10).astype(np.int64))
    total, count, state = 0.0, 0, None
    for i in range(0, data.shape[0] - 1, BPTT):
        inputs, targets = data[i : i + BPTT], data[i + 1 : i + 1 + BPTT]
        out = model(inputs[: len(targets)], state)
        state = out.state
        total += F.cross_entropy(out.logits.reshape(-1, vocab), targets.reshape(-1), reduction="sum").item()
        count += targets.numel()
    return math.exp(total / count)


def litzoo_run(data_dir: Path, warmup: int, steps: int | None, validate: bool) -> tuple[float, float | None]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from litzoo.platform.configs import register_resolvers
    from litzoo.platform.runner import RunContext, run

    TIMER.warmup = warmup
    register_resolvers()
    GlobalHydra.instance().clear()
    run_dir = Path(tempfile.mkdtemp(prefix="litzoo-bench-lm-"))
    overrides = [
        "task=language_model",
        f"paths.data_dir={data_dir}",
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={warmup + steps}",
        f"trainer.limit_val_batches={1.0 if validate else 0}",
        "trainer.num_sanity_val_steps=0",
        "test=false",
        f"paths.output_dir={run_dir}",
        f"seed={SEED}",
        "data.test_batch_size=10",
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        del cfg["hydra"]
        cfg.callbacks.step_timer = {"_target_": f"{__name__}.step_timer"}
    (run_dir / ".hydra").mkdir(parents=True)
    # The timer lives in this script, outside the trusted packages.
    run(cfg, RunContext(run_dir=run_dir, config_dirs=[ROOT / "conf"], overrides=["trust_config=true"]))
    ppl = None
    if validate:
        import csv

        with open(run_dir / "metrics.csv") as handle:
            ppl = [float(r["val/ppl"]) for r in csv.DictReader(handle) if r.get("val/ppl")][-1]
    timed = steps if steps is not None else 1
    return timed * BATCH * BPTT / (TIMER.end - TIMER.start), ppl


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "litzoo-bench-data"))
    parser.add_argument(
        "--genres",
        default=",".join(GENRES),
        help="training plays of the corpus (default: the data config's, tragedies,roman)",
    )
    parser.add_argument("--skip-throughput", action="store_true", help="only the perplexity comparison")
    args = parser.parse_args()
    GENRES[:] = args.genres.split(",")
    warmup, steps, rounds = (2, 10, 1) if args.quick else (5, 40, 3)
    ppl_steps = 40 if args.quick else None  # None: one whole epoch
    data_dir = Path(args.data_dir)
    train, val, vocab = corpus(data_dir)
    plain_loop(train, val[:2000], vocab, warmup, steps)  # warm the process up (oneDNN kernels), untimed
    results: dict[str, list[float]] = {"plain PyTorch loop": [], "litzoo (train.py path)": []}
    for _ in range(0 if args.skip_throughput else rounds):
        results["plain PyTorch loop"].append(plain_loop(train, val[:2000], vocab, warmup, steps)[0])
        results["litzoo (train.py path)"].append(litzoo_run(data_dir, warmup, steps, validate=False)[0])
    plain = (
        statistics.median(results["plain PyTorch loop"]) if results["plain PyTorch loop"] else float("nan")
    )
    print(
        f"\n2-layer LSTM (small preset, vocabulary {vocab}), {BATCH} streams x BPTT {BPTT}, {steps} timed steps "
        f"after {warmup} warm-up, {rounds} round(s), torch threads={torch.get_num_threads()}"
    )
    print(f"{'side':<26}{'tokens/s (median)':>20}{'all rounds':>34}{'ratio':>8}")
    for name, values in results.items():
        if not values:
            continue
        median = statistics.median(values)
        print(f"{name:<26}{median:>20.0f}{', '.join(f'{v:.0f}' for v in values):>34}{median / plain:>8.3f}")
    _, plain_ppl = plain_loop(train, val, vocab, 0, ppl_steps)
    _, litzoo_ppl = litzoo_run(data_dir, 0, ppl_steps, validate=True)
    trained = f"{ppl_steps} training steps" if ppl_steps else "one epoch"
    print(
        f"\nValidation perplexity after {trained} on the plays of {GENRES} (whole validation split, 10 streams):"
    )
    print(
        f"  plain PyTorch loop  {plain_ppl:.4f}\n  litzoo              {litzoo_ppl:.4f}\n"
        f"  relative difference {abs(litzoo_ppl - plain_ppl) / plain_ppl:.2e}"
    )


if __name__ == "__main__":
    main()
