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


def get_model(
    name: str | os.PathLike,
    pretrained: str | os.PathLike | None = None,
    num_classes: int | None = None,
    task: str | None = None,
    **options,
):
    """A `torch.nn.Module` in one line, like timm's `create_model`: `get_model("resnet50", num_classes=10)`
    builds the `conf/model/resnet50.yaml` entry as training would (`pretrained`: a local weights file
    or checkpoint folder; `options`: other entry keys), `get_model(run_dir)` returns a run's trained
    network. See `litzoo.zoo.api.get_model` and docs/python_api.md."""
    from litzoo.zoo.api import get_model as _get_model

    return _get_model(name, pretrained=pretrained, num_classes=num_classes, task=task, **options)
