"""Per-family datamodules: readers for real on-disk formats, embedded stand-ins and layout checks.

One package per task family (`classification/`, `detection/`, `text_classification/`, ...); each
builds on the family-agnostic data API in `litzoo.data`. Package `__init__` files import nothing
heavy, so a layout check (run before torch is imported) can live beside its readers."""
