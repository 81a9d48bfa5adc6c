"""One benchmark stage in a fresh process: ``python -m litzoo.benchmark.worker <job.json>``.

The job file names the stage (``eager``, ``compile``, ``export``, ``onnx``), the settings and
where to write the result: ``{"ok": true, "values": {...}}`` or ``{"ok": false, "reason": ...}``
(one line, shown as the reason a backend was skipped). Started by :mod:`litzoo.benchmark.cli`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from litzoo.benchmark.config import Settings, compose


def run_stage(stage: str, settings: Settings, folder: Path) -> dict[str, Any]:
    """The values one stage measured (raises on failure)."""
    cfg = compose(settings.overrides)
    from litzoo.benchmark import stages

    if stage in ("eager", "compile"):
        return stages.measure_torch(cfg, settings, stage)
    if stage == "export":
        return stages.export_onnx(cfg, settings, folder)
    if stage == "onnx":
        return stages.measure_onnx(cfg, settings, folder)
    raise ValueError(f"unknown stage {stage}")


def outcome(stage: str, settings: Settings, folder: Path) -> dict[str, Any]:
    """`run_stage` as a result record: a failure becomes its one-line reason."""
    try:
        return {"ok": True, "values": run_stage(stage, settings, folder)}
    except Exception as error:  # any failure skips this backend, with its reason
        lines = str(error).strip().splitlines() or [""]
        return {"ok": False, "reason": f"{type(error).__name__}: {lines[0][:300]}"}


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    result = outcome(job["stage"], Settings.from_json(job["settings"]), Path(job["folder"]))
    Path(job["result"]).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
