"""Action recognition: training throughput of litzoo versus a plain PyTorch loop, side by side in one run.

Both sides train torchvision's R(2+1)D-18 on the same in-memory batches of clips (moving shapes,
``--frames`` frames at ``--size`` pixels), with SGD (momentum 0.9, weight decay 1e-4) and a cosine
schedule, for the same number of steps. The plain side is the loop people write around
``torchvision.models.video.r2plus1d_18``: forward, cross-entropy, backward, step. The litzoo side is the
real platform: ``task=action_recognition model=r2plus1d_18`` composed by Hydra and run by
``litzoo.platform.runner.run`` with its Trainer, task module, logger, callbacks and run record; only
the datamodule is swapped for the in-memory one. Warm-up steps are not timed, an untimed loop first
warms the process up, and the sides alternate (which goes first alternates too). Each side reports
clips per wall-clock second and per CPU second of the process; the ratio of the medians is the figure.

    python benchmarks/bench_action_recognition.py               # 2 warm-up + 10 timed steps, 5 rounds
    python benchmarks/bench_action_recognition.py --quick       # 1 + 4 steps, 3 rounds
    python benchmarks/bench_action_recognition.py --threads 1   # less noise on a busy machine
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from litzoo.data.base import BaseDataModule  # noqa: E402
from litzoo.datamodules.action_recognition.moving_shapes import MOTION_CLASSES, draw_clip  # noqa: E402

MEAN = torch.tensor([0.432, 0.394, 0.376])[:, None, None, None]
STD = torch.tensor([0.228, 0.221, 0.217])[:, None, None, None]


def make_data(samples: int, frames: int, size: int) -> TensorDataset:
    """Normalised ``3 x T x H x W`` clips with their labels, drawn once and kept in memory."""
    rng = np.random.default_rng(0)
    clips, labels = [], []
    for index in range(samples):
        label = index % len(MOTION_CLASSES)
        pixels = torch.from_numpy(draw_clip(rng, label, frames, size)).permute(3, 0, 1, 2).float() / 255
        clips.append((pixels - MEAN) / STD)
        labels.append(label)
    return TensorDataset(torch.stack(clips), torch.tensor(labels))


class InMemoryDataModule(BaseDataModule):
    """Built by the platform from `cfg.data`; serves DATASET in the same fixed order as the plain loop."""

    def info(self) -> dict:
        return {
            "targets": "video_clips",
            "num_classes": len(MOTION_CLASSES),
            "class_names": list(MOTION_CLASSES),
            "views": {"val": [1, 1], "test": [1, 1]},
            "preprocess": {},
        }

    def setup(self, stage: str | None = None) -> None:
        self.train_set = self.val_set = self.test_set = DATASET

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=False)


class StepTimer(pl.Callback):
    """Times the training steps after the warm-up ones (wall clock and process CPU time)."""

    warmup = 0
    start = end = (0.0, 0.0)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.start = clocks()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.end = clocks()


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def rates(samples: int, start: tuple[float, float], end: tuple[float, float]) -> tuple[float, float]:
    """Samples per wall-clock second and per CPU second between two `clocks()` readings."""
    return samples / (end[0] - start[0]), samples / (end[1] - start[1])


TIMER = StepTimer()
DATASET: TensorDataset | None = None


def step_timer() -> StepTimer:
    return TIMER


def plain_loop(
    dataset: TensorDataset, batch_size: int, warmup: int, steps: int, lr: float
) -> tuple[float, float]:
    """The plain PyTorch loop around torchvision's R(2+1)D-18."""
    from torchvision.models.video import r2plus1d_18

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    model = r2plus1d_18(weights=None, num_classes=len(MOTION_CLASSES))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, warmup + steps)
    model.train()
    start = (0.0, 0.0)
    for step, (clips, labels) in enumerate(DataLoader(dataset, batch_size=batch_size, shuffle=False)):
        if step == warmup:
            start = clocks()
        loss = F.cross_entropy(model(clips), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss.item()  # the platform logs the loss every step, which syncs the same way
    return rates(steps * batch_size, start, clocks())


def litzoo_run(
    dataset: TensorDataset, batch_size: int, warmup: int, steps: int, lr: float
) -> tuple[float, float]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from litzoo.platform.configs import register_resolvers
    from litzoo.platform.runner import RunContext, run

    global DATASET
    DATASET = dataset
    TIMER.warmup = warmup
    register_resolvers()
    GlobalHydra.instance().clear()
    run_dir = Path(tempfile.mkdtemp(prefix="litzoo-bench-ar-"))
    overrides = [
        "task=action_recognition",
        "model=r2plus1d_18",
        "optim=sgd",
        f"optim.lr={lr}",
        "optim.nesterov=false",
        "optim.weight_decay=1e-4",
        "sched.warmup_epochs=0",
        "trainer.max_epochs=1",
        "trainer.limit_val_batches=0",
        "trainer.limit_test_batches=0",
        "test=false",
        f"paths.output_dir={run_dir}",
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        del cfg["hydra"]
        cfg.data = OmegaConf.create(
            {
                "name": "in_memory",
                "tasks": ["action_recognition"],
                "_target_": f"{__name__}.InMemoryDataModule",
                "batch_size": batch_size,
            }
        )
        cfg.callbacks.step_timer = {"_target_": f"{__name__}.step_timer"}
    (run_dir / ".hydra").mkdir(parents=True)
    # The in-memory datamodule and the timer live in this script, outside the trusted packages.
    run(cfg, RunContext(run_dir=run_dir, config_dirs=[ROOT / "conf"], overrides=["trust_config=true"]))
    return rates(steps * batch_size, TIMER.start, TIMER.end)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f}  [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (5; --quick: 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warmup, steps, rounds = (1, 4, 3) if args.quick else (2, 10, 5)
    rounds = args.rounds or rounds
    dataset = make_data((warmup + steps) * args.batch_size, args.frames, args.size)
    lr = 0.01
    plain_loop(dataset, args.batch_size, warmup, steps, lr)  # warms oneDNN up: neither side pays for it
    sides = {"plain PyTorch loop": plain_loop, "litzoo (train.py path)": litzoo_run}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for round_index in range(rounds):
        order = list(sides) if round_index % 2 == 0 else list(sides)[::-1]
        for name in order:
            results[name].append(sides[name](dataset, args.batch_size, warmup, steps, lr))
    print(
        f"\nTraining R(2+1)D-18, batch {args.batch_size} x {args.frames} frames x {args.size}x{args.size}, "
        f"{steps} timed steps, {rounds} alternating round(s), {torch.get_num_threads()} thread(s); "
        "clips/s, median [min-max]:"
    )
    print(f"  {'':<26} {'per wall second':>24} {'per CPU second':>24}")
    for name, values in results.items():
        print(f"  {name:<26} {summary([v[0] for v in values]):>24} {summary([v[1] for v in values]):>24}")
    plain, ours = results["plain PyTorch loop"], results["litzoo (train.py path)"]
    for label, column in (("wall", 0), ("CPU", 1)):
        ratios = [o[column] / p[column] for o, p in zip(ours, plain)]
        medians = statistics.median(o[column] for o in ours) / statistics.median(p[column] for p in plain)
        print(
            f"  ratio litzoo / plain ({label}): {medians:.3f} of the medians; per round "
            f"{', '.join(f'{r:.3f}' for r in ratios)}"
        )


if __name__ == "__main__":
    main()
