"""Training throughput of 1 process versus 2 DDP processes (`trainer=ddp_cpu`) on the same workload.

Every configuration is a real `python train.py` run (Hydra, the runner, Lightning's DDP
launcher, gloo all-reduce) of a timm ResNet-18 on the embedded digits. A callback defined
in this file times the optimizer steps after the warm-up ones on every rank; samples/s is
global batch x timed steps / the slowest rank's time. Validation, testing and checkpoints
are switched off so only training is measured. Configurations:

- `1 process`: trainer=default, per-device batch B, all cores for its threads;
- `1 process, 1 thread`: the same with one thread (on a busy machine, OpenMP threads that
  wait for each other can be much slower than one thread);
- `ddp_cpu, same global batch`: 2 processes x B/2 (the same optimization: same global batch,
  same number of steps), cores split between the processes;
- `ddp_cpu, same per-device batch`: 2 processes x B (global batch 2B: more samples per step).

On a machine with C cores each process gets C/processes threads (OMP_NUM_THREADS), so both
sides use the whole machine. `--gpu` instead measures one GPU on ResNet-50 at 224 px with
fp32 and with bf16-mixed (the digits upsampled to 224 px, one input channel; data loading
with 8 workers, no augmentation).

    python benchmarks/bench_ddp_cpu.py                 # B=64, 5 warm-up + 30 timed steps, 2 rounds
    python benchmarks/bench_ddp_cpu.py --quick         # fewer steps, 1 round
    python benchmarks/bench_ddp_cpu.py --gpu           # single-GPU fp32 vs bf16 (needs a GPU)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
# No validation, test, checkpoints, progress bar or curves: training steps only.
QUIET = [
    "test=false",
    "trainer.limit_val_batches=0",
    "trainer.num_sanity_val_steps=0",
    "trainer.max_epochs=1000",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.model_checkpoint=null",
    "callbacks.step_checkpoint=null",
    "callbacks.lr_monitor=null",
    "trainer.log_every_n_steps=50",
    "trust.allow=[bench_ddp_cpu]",
    "+callbacks.step_timer._target_=bench_ddp_cpu.StepTimer",
]


class StepTimer(pl.Callback):
    """Times optimizer steps `warmup`..`max_steps` on this rank; writes bench_rank<r>.json.

    Imported by train.py (and its DDP children) from this file: `_target_: bench_ddp_cpu.StepTimer`.
    """

    def __init__(self, warmup: int = 5) -> None:
        self.warmup = warmup
        self.start: float | None = None
        self.end = 0.0
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup and self.start is None:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is not None:
            self.end = time.perf_counter()
            self.steps = trainer.global_step - self.warmup

    def on_train_end(self, trainer, pl_module) -> None:
        out = Path(trainer.default_root_dir) / f"bench_rank{trainer.global_rank}.json"
        out.write_text(
            json.dumps(
                {
                    "rank": trainer.global_rank,
                    "world_size": trainer.world_size,
                    "steps": self.steps,
                    "seconds": self.end - (self.start or self.end),
                }
            )
        )


@dataclass
class Config:
    name: str
    overrides: list[str]
    processes: int
    per_device_batch: int
    threads: int

    @property
    def global_batch(self) -> int:
        return self.per_device_batch * self.processes


def cpu_configs(batch: int, cores: int) -> list[Config]:
    return [
        Config("1 process", ["trainer=default", f"data.batch_size={batch}"], 1, batch, cores),
        Config("1 process, 1 thread", ["trainer=default", f"data.batch_size={batch}"], 1, batch, 1),
        Config(
            "ddp_cpu, same global batch",
            ["trainer=ddp_cpu", f"data.batch_size={batch // 2}"],
            2,
            batch // 2,
            max(1, cores // 2),
        ),
        Config(
            "ddp_cpu, same per-device batch",
            ["trainer=ddp_cpu", f"data.batch_size={batch}"],
            2,
            batch,
            max(1, cores // 2),
        ),
    ]


def gpu_configs(batch: int) -> list[Config]:
    common = [
        "trainer=gpu",
        "model=resnet50",
        "data.image_size=224",
        "data.num_workers=8",
        "data.augment=false",
        f"data.batch_size={batch}",
        "trainer.benchmark=true",
    ]
    return [
        Config("GPU fp32 (32-true)", [*common, "trainer.precision=32-true"], 1, batch, 8),
        Config("GPU bf16-mixed", [*common, "trainer.precision=bf16-mixed"], 1, batch, 8),
    ]


def run(config: Config, warmup: int, steps: int, workdir: Path) -> float:
    """One train.py run; returns global samples/s over the timed steps."""
    run_dir = workdir / f"{config.name.replace(' ', '_').replace(',', '')}_{time.monotonic_ns()}"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(config.threads),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    args = [
        sys.executable,
        str(ROOT / "train.py"),
        *config.overrides,
        *QUIET,
        f"+callbacks.step_timer.warmup={warmup}",
        f"trainer.max_steps={warmup + steps}",
        f"hydra.run.dir={run_dir}",
    ]
    result = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"{config.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    ranks = [json.loads(p.read_text()) for p in sorted(run_dir.glob("bench_rank*.json"))]
    if len(ranks) != config.processes or any(r["steps"] != steps for r in ranks):
        raise RuntimeError(f"{config.name}: unexpected timing records {ranks}")
    seconds = max(r["seconds"] for r in ranks)
    return config.global_batch * steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=64, help="per-device batch of the 1-process run (B)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 warm-up + 10 timed steps, 1 round")
    parser.add_argument("--gpu", action="store_true", help="single-GPU ResNet-50 224 px, fp32 vs bf16-mixed")
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.steps, args.rounds = 3, 10, 1
    cores = os.cpu_count() or 1
    configs = gpu_configs(args.batch) if args.gpu else cpu_configs(args.batch, cores)
    results: dict[str, list[float]] = {c.name: [] for c in configs}
    with tempfile.TemporaryDirectory(prefix="bench_ddp_") as tmp:
        for _ in range(args.rounds):  # alternate the configurations to spread machine noise
            for config in configs:
                results[config.name].append(run(config, args.warmup, args.steps, Path(tmp)))
    print(
        f"\n{'GPU' if args.gpu else 'CPU'} training throughput, {cores} cores, "
        f"{args.warmup} warm-up + {args.steps} timed steps, median of {args.rounds} round(s)"
    )
    print(
        f"{'configuration':34s} {'procs':>5s} {'batch/dev':>9s} {'global':>6s} {'threads':>7s} "
        f"{'samples/s':>10s} {'vs first':>8s}"
    )
    baseline = statistics.median(results[configs[0].name])
    for config in configs:
        value = statistics.median(results[config.name])
        print(
            f"{config.name:34s} {config.processes:5d} {config.per_device_batch:9d} {config.global_batch:6d} "
            f"{config.threads:7d} {value:10.1f} {value / baseline:7.2f}x"
        )


if __name__ == "__main__":
    main()
