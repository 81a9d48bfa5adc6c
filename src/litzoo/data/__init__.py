"""The family-agnostic data API: the base datamodule, the resumable loader, batchify, samplers,
bad-sample handling and the layout-check protocol. Nothing here knows a task family."""


def __getattr__(name: str):  # noqa: ANN202
    """`litzoo.data.SQuAD(...)`, `litzoo.data.COCODetection(...)`, ...: the one-line datasets of
    `litzoo.datasets`, imported on first use. The one documented exception to "litzoo.data imports
    no family" (tests/test_layout.py): the facade lives above the families, reached lazily, so
    `import litzoo.data` stays light and nothing in this package depends on a family."""
    from litzoo import datasets as facade

    if name in facade.__all__:
        return getattr(facade, name)
    raise AttributeError(f"module 'litzoo.data' has no attribute {name!r}")
