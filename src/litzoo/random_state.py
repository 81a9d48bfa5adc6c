"""The process's global random states (Python, numpy, torch) as plain, checkpoint-safe data.

Checkpoints load with ``weights_only=True``, which refuses numpy arrays, so the generator
words are stored as raw bytes (the three Mersenne Twister states and torch's state), inside
tuples of plain values. Bytes are also cheap to copy and compare, which matters because
DataLoader workers report their states with every batch (see `datamodules.loader`).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng_state", "restore_rng_state"]


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy and torch (and CUDA, once initialised) random states of this process."""
    version, mt_state, gauss = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": (version, np.asarray(mt_state, dtype=np.uint32).tobytes(), gauss),
        "numpy": (np_keys.astype(np.uint32).tobytes(), int(np_pos), int(np_has_gauss), float(np_gauss)),
        "torch": torch.get_rng_state().numpy().tobytes(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng_state` returned."""
    version, mt_state, gauss = state["python"]
    random.setstate((version, tuple(np.frombuffer(mt_state, dtype=np.uint32).tolist()), gauss))
    np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state(("MT19937", np.frombuffer(np_keys, dtype=np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(torch.frombuffer(bytearray(state["torch"]), dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
