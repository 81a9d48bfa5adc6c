"""Datamodules, datasets in real on-disk formats, batchify functions and samplers."""
