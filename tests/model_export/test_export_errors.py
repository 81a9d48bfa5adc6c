"""Bad input to `python -m litzoo.export`: one paragraph naming the problem and the fix, its own exit code."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from conftest import ROOT

from litzoo.tasks.base import TaskModule
from litzoo.tasks.classification import ClassificationTask

from .conftest import export, read_json


def test_refusals_before_torch_is_imported(tmp_path) -> None:
    """Decided by the arguments alone: answered without importing torch (a second, not ten)."""
    script = (
        "import sys; from litzoo.export.cli import main; code = main(sys.argv[1:]); "
        "print('torch imported' if 'torch' in sys.modules else 'torch not imported'); sys.exit(code)"
    )
    cases = [
        ([str(tmp_path / "nowhere")], 4, f"Run directory {tmp_path / 'nowhere'} does not exist"),
        ([str(tmp_path)], 4, "is not a litzoo run directory: it has no .hydra/config.yaml"),
        ([str(tmp_path), "--format", "torchscript", "--int8"], 2, "--int8 quantizes with onnxruntime"),
        ([str(tmp_path), "--samples", "0"], 2, "--samples 0: give a positive number"),
    ]
    for argv, code, message in cases:
        result = subprocess.run(
            [sys.executable, "-c", script, *argv], capture_output=True, text=True, cwd=ROOT, timeout=120
        )
        assert result.returncode == code, (argv, result.stderr)
        assert result.stderr.startswith("Error: ") and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and result.stdout.strip() == "torch not imported"


def test_missing_export_extra_names_the_install_command(tmp_path, monkeypatch) -> None:
    import importlib.util

    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("task: {name: classification}\n")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a)
    )
    code, _, err = export(str(tmp_path))
    assert code == 5 and "pip install 'litzoo[export]'" in err and "onnxruntime" in err


def test_task_without_exporter_lists_the_tasks_that_have_one(classifier_run, monkeypatch) -> None:
    monkeypatch.setattr(ClassificationTask, "export_spec", TaskModule.export_spec)  # as if it had none
    code, _, err = export(str(classifier_run), "--format", "onnx")
    assert code == 2
    assert err.startswith(
        "Error: Task classification (ClassificationTask) has no exporter yet. Tasks that do: "
    )
    listed = err.split("Tasks that do: ")[1].split(".")[0].split(", ")
    assert {"detection", "text_classification"} <= set(listed) and "classification" not in listed


def test_parity_failure_saves_inputs_and_differences_and_exits_non_zero(classifier_run, tmp_path) -> None:
    """A zero tolerance: onnxruntime's float rounding (about 1e-6) is above it, so the check must fail."""
    out = tmp_path / "strict"
    code, stdout, err = export(
        str(classifier_run), "--format", "onnx", "--atol", "0", "--rtol", "0", "-o", str(out)
    )
    assert (
        code == 6 and "does not match PyTorch on the val split" in err and str(out / "parity_failure") in err
    )
    assert "FAILED" in stdout
    record = read_json(out / "export.json")
    assert record["parity"]["passed"] is False and record["parity"]["failed_calls"]
    differences = read_json(out / "parity_failure" / "differences.json")
    assert differences["max_abs_diff"] == record["parity"]["max_abs_diff"] > 0
    saved = np.load(out / "parity_failure" / "inputs_and_outputs.npz")
    first = record["parity"]["failed_calls"][0]
    eager, exported = saved[f"call{first}_logits_eager"], saved[f"call{first}_logits_exported"]
    assert saved[f"call{first}_input0"].ndim == 4
    assert float(np.abs(eager - exported).max()) <= differences["max_abs_diff"]
    assert read_json(classifier_run / "run.json")["exports"]["onnx"]["parity_passed"] is False
