"""The parity check: the exported file against PyTorch eager, on real inputs, with a hard verdict.

Each output of each call is compared element-wise with numpy's ``allclose`` rule,
``|exported - eager| <= atol + rtol * |eager|``, and its shape must be the same (a detector that
keeps one box more is a failure, whatever the numbers). Reported per output: the largest absolute
difference and the largest relative one (``|d| / max(|eager|, atol)``, so values near zero do not
blow it up). Above the tolerance the check fails: the command exits non-zero, and the inputs, both
outputs and the differences are saved beside the export (``parity_failure/``), never a warning only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from litzoo.errors import LitzooError


class ParityError(LitzooError):
    """The exported model does not compute what the PyTorch model computes."""

    exit_code = 6


@dataclass
class OutputStats:
    name: str
    max_abs: float = 0.0
    max_rel: float = 0.0
    violations: int = 0
    elements: int = 0
    shape_mismatches: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_abs_diff": self.max_abs,
            "max_rel_diff": self.max_rel,
            "elements": self.elements,
            "elements_above_tolerance": self.violations,
            "shape_mismatches": self.shape_mismatches[:5],
        }


@dataclass
class ParityReport:
    tolerances: dict[str, tuple[float, float]]
    outputs: dict[str, OutputStats]
    calls: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)  # indices of calls that failed
    errors: list[str] = field(default_factory=list)  # the exported model raised instead of answering

    @property
    def passed(self) -> bool:
        return self.calls > 0 and not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "tolerances": {name: {"atol": a, "rtol": r} for name, (a, r) in self.tolerances.items()},
            "rule": "|exported - eager| <= atol + rtol * |eager|, and equal shapes",
            "calls": self.calls,
            "batch_sizes": self.batch_sizes,
            "failed_calls": self.failures[:20],
            "errors": self.errors[:5],
            "max_abs_diff": max((s.max_abs for s in self.outputs.values()), default=0.0),
            "max_rel_diff": max((s.max_rel for s in self.outputs.values()), default=0.0),
            "outputs": {name: s.as_dict() for name, s in self.outputs.items()},
        }

    def summary(self) -> str:
        text = ", ".join(
            f"{name}: max abs {s.max_abs:.3g}, max rel {s.max_rel:.3g}" for name, s in self.outputs.items()
        )
        return text + (
            f"; the exported model failed on {len(self.errors)} call(s): {self.errors[0]}"
            if self.errors
            else ""
        )


def compare(
    eager: Sequence[np.ndarray],
    exported: Sequence[np.ndarray],
    names: Sequence[str],
    tolerances: dict[str, tuple[float, float]],
) -> tuple[list[tuple[str, np.ndarray | None, bool]], bool]:
    """Per output: (name, |difference| or None for a shape mismatch, within its tolerance)."""
    rows, ok = [], len(eager) == len(exported)
    for name, ref, got in zip(names, eager, exported):
        atol, rtol = tolerances[name]
        ref, got = np.asarray(ref), np.asarray(got)
        if ref.shape != got.shape:
            rows.append((name, None, False))
            ok = False
            continue
        diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        within = bool(np.all(diff <= atol + rtol * np.abs(ref.astype(np.float64))))
        rows.append((name, diff, within))
        ok = ok and within
    return rows, ok


def check(
    calls: Sequence[Sequence[torch.Tensor]],
    eager_run: Any,
    exported_run: Any,
    names: Sequence[str],
    tolerances: dict[str, tuple[float, float]],
    failure_dir: Path,
    batched: bool = True,
) -> ParityReport:
    """Run every call through both, compare, and on failure save what a reader needs to reproduce it.
    `batched`: the first input's axis 0 is the batch (else each call is one sample)."""
    report = ParityReport(dict(tolerances), {name: OutputStats(name) for name in names})
    saved: dict[str, np.ndarray] = {}
    for index, inputs in enumerate(calls):
        eager = eager_run(inputs)
        try:
            exported = exported_run(inputs)
        except Exception as error:  # a shape guard, a runtime's refusal: this input cannot be served
            first = str(error).strip().splitlines()
            report.errors.append(
                f"call {index} ({[list(t.shape) for t in inputs]}): {type(error).__name__}: {first[-1] if first else ''}"
            )
            exported = []
        rows, ok = compare(eager, exported, names, tolerances)
        report.calls += 1
        report.batch_sizes.append(int(inputs[0].shape[0]) if batched and inputs[0].ndim else 1)
        for (name, diff, _), ref, got in zip(rows, eager, exported):
            stats, (atol, rtol) = report.outputs[name], tolerances[name]
            if diff is None:
                stats.shape_mismatches.append(
                    f"call {index}: eager {list(np.shape(ref))}, exported {list(np.shape(got))}"
                )
                continue
            stats.elements += diff.size
            if diff.size:
                scale = np.maximum(np.abs(np.asarray(ref, dtype=np.float64)), max(atol, 1e-12))
                stats.max_abs = max(stats.max_abs, float(diff.max()))
                stats.max_rel = max(stats.max_rel, float((diff / scale).max()))
                stats.violations += int(np.sum(diff > atol + rtol * np.abs(np.asarray(ref, np.float64))))
        if not ok:
            report.failures.append(index)
            if len(report.failures) <= 10:  # enough to reproduce, not a copy of the split
                for i, tensor in enumerate(inputs):
                    saved[f"call{index}_input{i}"] = tensor.detach().cpu().numpy()
                for name, ref, got in zip(names, eager, exported):
                    saved[f"call{index}_{name}_eager"] = np.asarray(ref)
                    saved[f"call{index}_{name}_exported"] = np.asarray(got)
    if report.failures:
        failure_dir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(failure_dir / "inputs_and_outputs.npz", **saved)
        (failure_dir / "differences.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return report
