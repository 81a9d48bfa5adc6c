"""Peak memory of a measurement, on CPU and on GPU.

GPU: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (the model's weights
included, since the model is moved to the device after the reset), as timm's benchmark reports.

CPU: tracemalloc does not see torch's allocations, so the measure is the process's resident
set: its peak (Linux ``VmHWM``) over the measurement minus its size just before the model was
built. Linux lets a process reset its own peak (``/proc/self/clear_refs`` = 5, Linux >= 4.0),
so the peak belongs to this measurement and not to the imports or the data loading before it.
Where that reset is not available, the peak is ``ru_maxrss`` of the process, which is why
each backend runs in a fresh process by default. The CSV says which measure a row used.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _max_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB


@dataclass
class RssPeak:
    """Peak resident memory from `start()` on, above the resident size at `start()`."""

    baseline: int = 0
    measure: str = "rss_peak_delta"

    def start(self) -> None:
        current = _status_kb("VmRSS")
        reset = False
        try:
            Path("/proc/self/clear_refs").write_text("5")
            reset = _status_kb("VmHWM") is not None
        except OSError:
            pass
        if current is not None and reset:
            self.baseline, self.measure = current * 1024, "rss_peak_delta"
        else:  # no per-measurement peak: the process's peak since it started (a fresh process)
            self.baseline, self.measure = 0, "process_max_rss"

    def peak_mb(self) -> float:
        delta = self.measure == "rss_peak_delta"
        peak = (_status_kb("VmHWM") or 0) * 1024 if delta else _max_rss_bytes()
        return max(peak - self.baseline, 0) / MB


@dataclass
class CudaPeak:
    """Peak memory torch allocated on the GPU from `start()` on."""

    device: str = "cuda"
    measure: str = "cuda_max_allocated"

    def start(self) -> None:
        import torch

        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mb(self) -> float:
        import torch

        torch.cuda.synchronize(self.device)
        return torch.cuda.max_memory_allocated(self.device) / MB
