"""The family-agnostic data API: the base datamodule, the resumable loader, batchify, samplers,
bad-sample handling and the layout-check protocol. Nothing here knows a task family."""
