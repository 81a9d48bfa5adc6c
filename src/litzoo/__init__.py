"""litzoo: a config-driven training platform for vision and NLP on Lightning and Hydra.

Importing this package is cheap on purpose: nothing here imports torch, lightning
or timm, so `train.py --help` and config printing stay fast.
"""

import os

__version__ = "0.2.0"


def load(run_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None, device: str = "cpu"):
    """The trained model of a run directory with its preprocessing, ready to predict (a
    `litzoo.tasks.base.TaskModule` in eval mode on `device`; `checkpoint`: another than the run's best):
    `litzoo.load("outputs/classification/resnet18/<time>").predict_inputs(["cat.png"])`."""
    from litzoo.tasks.base import TaskModule

    return TaskModule.from_run_dir(run_dir, checkpoint, device)
