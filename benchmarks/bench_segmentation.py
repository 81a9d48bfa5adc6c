"""Semantic segmentation: training throughput of litzoo versus a plain torchvision loop, and the cost of
sliding-window + flip inference versus whole-image inference, side by side in one run.

1. Training. Both sides train DeepLabV3-MobileNetV3-Large (auxiliary head on) on the same
   in-memory batches of crops of the embedded scenes, with SGD (momentum 0.9, weight decay 1e-4)
   and a poly schedule, for the same number of steps. The plain side is the loop of torchvision's
   ``references/segmentation``: ``torchvision.models.segmentation.deeplabv3_mobilenet_v3_large``,
   cross-entropy with ignore index 255 on both heads. The litzoo side is the real platform:
   ``task=semantic_segmentation model=deeplabv3_mobilenet_v3_large`` composed by Hydra and run by
   ``litzoo.platform.runner.run`` with its Trainer, task module, logger, callbacks and run record;
   only the datamodule is swapped for the in-memory one. Warm-up steps are not timed, an untimed
   loop first warms the process up, and the sides alternate (which goes first alternates too).
   Each side reports samples per wall-clock second and per CPU second of the process (all its
   threads): on a machine shared with other jobs the wall clock mostly measures the neighbours,
   while CPU time measures the work each side does.
2. Inference. One trained-from-scratch model (weights do not change the cost) segments the same
   large images whole, whole + flip, with sliding windows, and with sliding windows + flip.

    python benchmarks/bench_segmentation.py                # 3 warm-up + 20 timed steps, 5 rounds
    python benchmarks/bench_segmentation.py --quick        # 2 + 6 steps, 3 rounds
    python benchmarks/bench_segmentation.py --threads 1    # torch.set_num_threads(1): less noise on a busy machine
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
from litzoo.datamodules.segmentation.scenes import SCENE_CLASSES, draw_scene  # noqa: E402

NUM_CLASSES = len(SCENE_CLASSES)
MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def make_data(samples: int, size: int) -> TensorDataset:
    """Normalised scenes with their masks (255 borders included), drawn once and kept in memory."""
    images, masks = [], []
    for index in range(samples):
        pixels, labels = draw_scene(size, size, 5, 1, np.random.default_rng([0, index]))
        images.append((torch.from_numpy(pixels).permute(2, 0, 1).float() / 255 - MEAN) / STD)
        masks.append(torch.from_numpy(labels).long())
    return TensorDataset(torch.stack(images), torch.stack(masks))


class InMemoryDataModule(BaseDataModule):
    """Built by the platform from `cfg.data`; serves DATASET in the same fixed order as the plain loop."""

    def info(self) -> dict:
        return {
            "targets": "label_masks",
            "num_classes": NUM_CLASSES,
            "class_names": list(SCENE_CLASSES),
            "ignore_index": 255,
            "colours": None,
            "mean": MEAN.flatten().tolist(),
            "std": STD.flatten().tolist(),
            "eval_scale": None,
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
    """torchvision's references/segmentation training loop, reduced to what a step does."""
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    model = deeplabv3_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=NUM_CLASSES, aux_loss=True
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    total = warmup + steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (1 - step / total) ** 0.9)
    model.train()
    start = (0.0, 0.0)
    for step, (images, masks) in enumerate(DataLoader(dataset, batch_size=batch_size, shuffle=False)):
        if step == warmup:
            start = clocks()
        outputs = model(images)
        loss = F.cross_entropy(outputs["out"], masks, ignore_index=255)
        loss = loss + 0.4 * F.cross_entropy(outputs["aux"], masks, ignore_index=255)
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
    run_dir = Path(tempfile.mkdtemp(prefix="litzoo-bench-seg-"))
    overrides = [
        "task=semantic_segmentation",
        "model=deeplabv3_mobilenet_v3_large",
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
                "tasks": ["semantic_segmentation"],
                "_target_": f"{__name__}.InMemoryDataModule",
                "batch_size": batch_size,
            }
        )
        cfg.callbacks.step_timer = {"_target_": f"{__name__}.step_timer"}
    (run_dir / ".hydra").mkdir(parents=True)
    # The in-memory datamodule and the timer live in this script, outside the trusted packages.
    run(cfg, RunContext(run_dir=run_dir, config_dirs=[ROOT / "conf"], overrides=["trust_config=true"]))
    return rates(steps * batch_size, TIMER.start, TIMER.end)


def inference_costs(size: tuple[int, int], crop: int, stride: int, repeats: int) -> dict[str, float]:
    """CPU seconds per image of each inference mode (DeepLabV3-MobileNetV3, eval mode, no gradients)."""
    from litzoo.models.segmentation import build_torchvision_segmenter
    from litzoo.vision.segmentation_inference import InferenceMode, segment

    torch.manual_seed(0)
    model = build_torchvision_segmenter(
        "deeplabv3", NUM_CLASSES, "mobilenet_v3_large", aux_loss=False, output_stride=16
    ).eval()
    image = torch.randn(1, 3, *size)
    modes = {
        "whole": InferenceMode(),
        "whole + flip": InferenceMode(flip=True),
        f"slide {crop}/{stride}": InferenceMode(
            mode="slide", crop_size=(crop, crop), stride=(stride, stride)
        ),
        f"slide {crop}/{stride} + flip": InferenceMode(
            mode="slide", crop_size=(crop, crop), stride=(stride, stride), flip=True
        ),
    }
    costs = {}
    with torch.no_grad():
        for mode in modes.values():  # warm up every input shape once
            segment(lambda x: model(x)["out"], image, mode)
        for name, mode in modes.items():
            start = time.process_time()
            for _ in range(repeats):
                segment(lambda x: model(x)["out"], image, mode)
            costs[name] = (time.process_time() - start) / repeats
    return costs


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f}  [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128, help="training crop side")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (5; --quick: 3)")
    parser.add_argument("--no-training", action="store_true", help="skip part 1")
    parser.add_argument("--no-inference", action="store_true", help="skip part 2")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warmup, steps, rounds = (2, 6, 3) if args.quick else (3, 20, 5)
    rounds = args.rounds or rounds
    if not args.no_training:
        train_side_by_side(args.batch_size, args.crop, warmup, steps, rounds)
    if not args.no_inference:
        inference_side_by_side(args.quick)


def train_side_by_side(batch_size: int, crop: int, warmup: int, steps: int, rounds: int) -> None:
    dataset = make_data((warmup + steps) * batch_size, crop)
    lr = 0.01
    plain_loop(dataset, batch_size, warmup, steps, lr)  # warms oneDNN up: neither side pays for it
    sides = {"plain torchvision loop": plain_loop, "litzoo (train.py path)": litzoo_run}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for round_index in range(rounds):
        order = list(sides) if round_index % 2 == 0 else list(sides)[::-1]
        for name in order:
            results[name].append(sides[name](dataset, batch_size, warmup, steps, lr))
    print(
        f"\nTraining DeepLabV3-MobileNetV3 (aux head), batch {batch_size} x {crop}x{crop}, "
        f"{steps} timed steps, {rounds} alternating round(s), {torch.get_num_threads()} thread(s); "
        "samples/s, median [min-max]:"
    )
    print(f"  {'':<26} {'per wall second':>24} {'per CPU second':>24}")
    for name, values in results.items():
        print(f"  {name:<26} {summary([v[0] for v in values]):>24} {summary([v[1] for v in values]):>24}")
    plain, ours = results["plain torchvision loop"], results["litzoo (train.py path)"]
    for label, column in (("wall", 0), ("CPU", 1)):
        ratios = [o[column] / p[column] for o, p in zip(ours, plain)]
        medians = statistics.median(o[column] for o in ours) / statistics.median(p[column] for p in plain)
        print(
            f"  ratio litzoo / plain ({label}): {medians:.3f} of the medians; per round "
            f"{', '.join(f'{r:.3f}' for r in ratios)}"
        )


def inference_side_by_side(quick: bool) -> None:
    size, crop, stride = ((256, 512), 128, 96) if quick else ((512, 1024), 256, 192)
    costs = inference_costs(size, crop, stride, repeats=2 if quick else 5)
    whole = costs["whole"]
    print(f"\nInference on a {size[0]}x{size[1]} image, CPU seconds per image (x whole-image):")
    for name, seconds in costs.items():
        print(f"  {name:<26} {seconds:8.3f}   x{seconds / whole:.2f}")


if __name__ == "__main__":
    main()
