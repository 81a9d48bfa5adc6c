"""Language modelling through litzoo versus a plain PyTorch loop, side by side: tokens/s and perplexity.

Both sides train the same 2-layer LSTM (Zaremba's small preset, litzoo's `create_lstm_lm`, built
from the same seed) on the same BPTT batches of the embedded Shakespeare corpus (20 streams x 35
steps, the hidden state carried and detached), with the same SGD (lr 1, gradient norm clipped at
5), for the same steps, in one process on one thread (`torch.set_num_threads(1)`):

- **throughput**: every step is timed end to end (the time from the end of one step to the end of
  the next: data, forward, backward, clipping, optimizer, logging, callbacks), after `--warmup`
  untimed steps, for `--steps` steps. The litzoo side is the real `train.py` path: the config
  composed by Hydra, `litzoo.platform.runner.run` with its Trainer, task, datamodule (reader,
  vocabulary, BPTT sampler), logger, callbacks (rolling checkpoints included) and run record; the
  plain side is the loop of the PyTorch word_language_model example. An untimed plain loop warms
  the process up first; then `--rounds` rounds alternate the order of the sides (plain, litzoo;
  litzoo, plain; ...) so that a change in the machine's load hits both. Reported, by the wall
  clock and by the process's CPU clock (`time.process_time`, far less disturbed by other jobs on
  a shared machine): each side's median step time (as tokens/s), each round's, and the median
  over rounds of the ratio of the two sides' median step times in that round.
- **perplexity**: validation perplexity (10 streams, BPTT 35, whole split) after one epoch
  (`--quick`: 40 steps) on both sides: the same computation, so it should agree to float noise.

    python benchmarks/bench_language_model.py            # 10 warm-up + 100 timed steps, 5 rounds; 1-epoch ppl
    python benchmarks/bench_language_model.py --quick    # 3 + 20 steps, 2 rounds; 40-step ppl
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
    """Records the time at the end of every training step (the litzoo side's step clock)."""

    ends: list[float] = []
    cpu_ends: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.ends.append(time.perf_counter())
        self.cpu_ends.append(time.process_time())


TIMER = StepTimer()


def step_timer() -> StepTimer:
    return TIMER


def step_times(ends: list[float], warmup: int, steps: int) -> list[float]:
    """Durations of steps warmup .. warmup + steps - 1, each from the end of the step before it."""
    assert warmup >= 1 and len(ends) >= warmup + steps, (len(ends), warmup, steps)
    return [ends[i] - ends[i - 1] for i in range(warmup, warmup + steps)]


def corpus(data_dir: Path) -> tuple[np.ndarray, np.ndarray, int]:
    # The data config's corpus (conf/data/shakespeare.yaml): the same folder, genres and vocabulary.
    dm = ShakespeareDataModule(root=data_dir / "shakespeare", genres=GENRES, tokenizer={"kind": "word"})
    ids = dm.prepare()
    return ids["train"], ids["val"], dm.encoding.vocab_size


def plain_loop(
    train: np.ndarray, val: np.ndarray, vocab: int, warmup: int, steps: int | None
) -> tuple[list[float], float]:
    """The PyTorch word_language_model loop; returns (the timed steps' durations, val ppl after them).
    `steps=None` trains one whole epoch (and times nothing)."""
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    model = create_lstm_lm(vocab, preset="small")
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    data = torch.from_numpy(stream_matrix(train, BATCH).astype(np.int64))  # [T, B], GluonNLP/PyTorch batchify
    model.train()
    state, ends, cpu_ends = None, [time.perf_counter()], [time.process_time()]
    for step, i in enumerate(range(0, data.shape[0] - 1, BPTT)):
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
        ends.append(time.perf_counter())
        cpu_ends.append(time.process_time())
    if steps is None:
        return ([], []), evaluate(model, val, vocab)
    times = (step_times(ends[1:], warmup, steps), step_times(cpu_ends[1:], warmup, steps))
    return times, evaluate(model, val, vocab)


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


def litzoo_run(
    data_dir: Path, warmup: int, steps: int | None, validate: bool, extra: list[str] | None = None
) -> tuple[list[float], float | None]:
    """`train.py task=language_model` for warmup + steps steps (None: one epoch); returns (the timed
    steps' durations, val ppl after them when `validate`)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from litzoo.platform.configs import register_resolvers
    from litzoo.platform.runner import RunContext, run

    TIMER.ends, TIMER.cpu_ends = [], []
    register_resolvers()
    GlobalHydra.instance().clear()
    run_dir = Path(tempfile.mkdtemp(prefix="litzoo-bench-lm-"))
    overrides = [
        "task=language_model",
        f"paths.data_dir={data_dir}",
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={1.0 if steps is None else warmup + steps}",
        f"trainer.limit_val_batches={1.0 if validate else 0}",
        "trainer.num_sanity_val_steps=0",
        "test=false",
        f"paths.output_dir={run_dir}",
        f"seed={SEED}",
        "data.test_batch_size=10",
        *(extra or []),
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
    if steps is None:
        return ([], []), ppl
    return (step_times(TIMER.ends, warmup, steps), step_times(TIMER.cpu_ends, warmup, steps)), ppl


def tokens_per_s(times: list[float]) -> float:
    return BATCH * BPTT / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per run (10; --quick: 3)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run (100; --quick: 20)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (5; --quick: 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "litzoo-bench-data"))
    parser.add_argument(
        "--genres",
        default=",".join(GENRES),
        help="training plays of the corpus (default: the data config's, tragedies,roman)",
    )
    parser.add_argument(
        "--litzoo-override",
        action="append",
        default=[],
        help="extra train.py override for the litzoo side (repeatable), e.g. callbacks.step_checkpoint=null",
    )
    parser.add_argument("--skip-throughput", action="store_true", help="only the perplexity comparison")
    parser.add_argument("--skip-ppl", action="store_true", help="only the throughput comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    GENRES[:] = args.genres.split(",")
    warmup = args.warmup if args.warmup is not None else (3 if args.quick else 10)
    steps = args.steps if args.steps is not None else (20 if args.quick else 100)
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 5)
    ppl_steps = 40 if args.quick else None  # None: one whole epoch
    data_dir = Path(args.data_dir)
    train, val, vocab = corpus(data_dir)
    plain_loop(train, val[:2000], vocab, warmup, steps)  # warm the process up (oneDNN kernels), untimed
    sides = ("plain PyTorch loop", "litzoo (train.py path)")
    runs: dict[str, list[tuple[list[float], list[float]]]] = {side: [] for side in sides}
    for round_ in range(0 if args.skip_throughput else rounds):
        order = sides if round_ % 2 == 0 else sides[::-1]  # alternate who goes first
        for side in order:
            if side == sides[0]:
                runs[side].append(plain_loop(train, val[:2000], vocab, warmup, steps)[0])
            else:
                runs[side].append(
                    litzoo_run(data_dir, warmup, steps, validate=False, extra=args.litzoo_override)[0]
                )
        (plain_wall, plain_cpu), (ours_wall, ours_cpu) = (runs[side][-1] for side in sides)
        print(
            f"round {round_ + 1}/{rounds}: wall plain {tokens_per_s(plain_wall):.0f}, litzoo "
            f"{tokens_per_s(ours_wall):.0f} tokens/s; CPU plain {tokens_per_s(plain_cpu):.0f}, litzoo "
            f"{tokens_per_s(ours_cpu):.0f} tokens/CPU-s",
            flush=True,
        )
    if not args.skip_throughput:
        print(
            f"\n2-layer LSTM (small preset, vocabulary {vocab}), {BATCH} streams x BPTT {BPTT}, {steps} timed "
            f"steps after {warmup} warm-up per run, {rounds} alternating round(s), torch threads="
            f"{torch.get_num_threads()}"
            + (f", litzoo overrides {args.litzoo_override}" if args.litzoo_override else "")
        )
        # Wall time is what a user waits; the process's CPU time per step is what the code costs, and
        # is much less disturbed by other jobs on a shared machine (they take turns on the cores).
        for clock, which in (("wall", 0), ("CPU", 1)):
            medians = {side: tokens_per_s([t for run in runs[side] for t in run[which]]) for side in sides}
            print(f"{clock + ' clock':<26}{'tokens/s (median step)':>24}{'per round':>40}")
            for side in sides:
                per_round = ", ".join(f"{tokens_per_s(run[which]):.0f}" for run in runs[side])
                print(f"  {side:<24}{medians[side]:>24.0f}{per_round:>40}")
            ratios = [
                tokens_per_s(o[which]) / tokens_per_s(p[which])
                for p, o in zip(*(runs[side] for side in sides))
            ]
            print(
                f"  ratio litzoo / plain ({clock}): {medians[sides[1]] / medians[sides[0]]:.3f} (all steps); "
                f"median of the rounds' ratios {statistics.median(ratios):.3f} "
                f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})"
            )
    if args.skip_ppl:
        return
    timed = None if ppl_steps is None else ppl_steps - 1  # 1 + timed steps in all
    _, plain_ppl = plain_loop(train, val, vocab, 1, timed)
    _, litzoo_ppl = litzoo_run(data_dir, 1, timed, validate=True)
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
