"""Throughput of training through litzoo versus a plain PyTorch loop, side by side.

Both train the same timm ResNet-18 on the same in-memory batches with the same
SGD settings for the same number of steps. The litzoo side is the real
platform: the default config composed by Hydra, `litzoo.platform.runner.run`
with its Trainer, task module, logger, callbacks, progress bar and run record;
only the datamodule is swapped for the in-memory one. Warm-up steps are not
timed on either side, an untimed loop first warms the process up, and the
sides alternate to spread machine noise.

    python benchmarks/bench_platform_overhead.py            # 5 warm-up + 30 timed steps, 2 rounds
    python benchmarks/bench_platform_overhead.py --quick    # fewer steps, one round
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from litzoo.data.base import BaseDataModule  # noqa: E402

NUM_CLASSES = 10


def make_data(batches: int, batch_size: int, image_size: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batches * batch_size, 3, image_size, image_size, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (batches * batch_size,), generator=generator)
    return TensorDataset(images, labels)


class InMemoryDataModule(BaseDataModule):
    """Built by the platform from `cfg.data`; serves DATASET in the same fixed order as the plain loop."""

    def __init__(self, batch_size: int, image_size: int, **kwargs: object) -> None:
        super().__init__(batch_size=batch_size, **kwargs)
        self.image_size = image_size

    def info(self) -> dict:
        return {"num_classes": NUM_CLASSES, "in_chans": 3, "image_size": self.image_size}

    def setup(self, stage: str | None = None) -> None:
        self.train_set = self.val_set = self.test_set = DATASET

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=False)


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
DATASET: TensorDataset | None = None


def step_timer() -> StepTimer:
    return TIMER


def plain_loop(dataset: TensorDataset, batch_size: int, warmup: int, steps: int, lr: float) -> float:
    import timm

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    model = timm.create_model("resnet18", num_classes=NUM_CLASSES, in_chans=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    start = 0.0
    for step, (images, labels) in enumerate(DataLoader(dataset, batch_size=batch_size, shuffle=False)):
        if step == warmup:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        loss.item()  # the platform logs the loss every step, which syncs the same way
    return steps * batch_size / (time.perf_counter() - start)


def litzoo_run(
    dataset: TensorDataset, batch_size: int, image_size: int, warmup: int, steps: int, lr: float
) -> float:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from litzoo.platform.cli import register_resolvers
    from litzoo.platform.runner import RunContext, run

    global DATASET
    DATASET = dataset
    TIMER.warmup = warmup
    register_resolvers()
    GlobalHydra.instance().clear()
    run_dir = Path(tempfile.mkdtemp(prefix="litzoo-bench-"))
    overrides = [
        f"optim.lr={lr}",
        "trainer.max_epochs=1",
        "trainer.limit_val_batches=0",
        "trainer.limit_test_batches=0",
        "test=false",
        "sched=constant",
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
                "tasks": ["classification"],
                "_target_": f"{__name__}.InMemoryDataModule",
                "batch_size": batch_size,
                "image_size": image_size,
            }
        )
        cfg.model.arch = "resnet18"
        cfg.callbacks.step_timer = {"_target_": f"{__name__}.step_timer"}
    (run_dir / ".hydra").mkdir(parents=True)
    # The in-memory datamodule and the timer live in this script, outside the trusted packages.
    run(cfg, RunContext(run_dir=run_dir, config_dirs=[ROOT / "conf"], overrides=["trust_config=true"]))
    return steps * batch_size / (TIMER.end - TIMER.start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    warmup, steps, rounds = (2, 8, 1) if args.quick else (5, 30, 3)
    dataset = make_data(warmup + steps, args.batch_size, args.image_size)
    # The first training loop of a process is slower (oneDNN picks and caches its kernels):
    # run one untimed so that neither side pays for it.
    plain_loop(dataset, args.batch_size, warmup, steps, lr=0.05)
    results: dict[str, list[float]] = {"plain PyTorch loop": [], "litzoo (train.py path)": []}
    for _ in range(rounds):
        results["plain PyTorch loop"].append(plain_loop(dataset, args.batch_size, warmup, steps, lr=0.05))
        results["litzoo (train.py path)"].append(
            litzoo_run(dataset, args.batch_size, args.image_size, warmup, steps, lr=0.05)
        )
    plain = statistics.median(results["plain PyTorch loop"])
    print(
        f"\nResNet-18, batch {args.batch_size}, {args.image_size}px, {steps} timed steps after {warmup} "
        f"warm-up, {rounds} round(s), torch threads={torch.get_num_threads()}"
    )
    print(f"{'side':<26}{'samples/s (median)':>20}{'all rounds':>28}{'ratio':>8}")
    for name, values in results.items():
        median = statistics.median(values)
        rounds_text = ", ".join(f"{v:.1f}" for v in values)
        print(f"{name:<26}{median:>20.1f}{rounds_text:>28}{median / plain:>8.3f}")


if __name__ == "__main__":
    main()
