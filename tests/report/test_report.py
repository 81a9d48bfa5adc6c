"""python -m litzoo.report over real run directories: table = run.json, Figure 1 = one point per run.

The runs and the benchmark CSV are real (tests/report/conftest.py). Every expected value is read
independently of the report code: run.json with json, metrics.csv with csv, the HTML with
html.parser, the benchmark CSV with csv.
"""

from __future__ import annotations

import csv
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import pytest

from litzoo.report.cli import main
from litzoo.report.figure import MAX_AREA, MIN_AREA

VOID = {"meta", "br", "img", "hr", "input", "link", "col", "area", "base", "source", "wbr"}


class Page(HTMLParser):
    """Checks that every element is closed in order, and collects the tables and SVG groups."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tables: dict[str, dict] = {}
        self.table: dict | None = None
        self.cell: dict | None = None
        self.ids: list[str] = []
        self.doctype = False
        self.in_svg = 0

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.append(attributes["id"])
        if tag == "svg":
            self.in_svg += 1
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "table":
            self.table = {"headers": [], "rows": []}
            self.tables[attributes.get("id", f"table{len(self.tables)}")] = self.table
        elif tag == "tr" and self.table is not None:
            self.table["rows"].append([])
        elif tag in ("td", "th") and self.table is not None:
            self.cell = {"tag": tag, "text": "", "value": attributes.get("data-value"), "links": []}
        elif tag == "a" and self.cell is not None:
            self.cell["links"].append(attributes.get("href"))

    def handle_startendtag(self, tag: str, attrs: list) -> None:  # <path .../> inside the SVG
        if dict(attrs).get("id"):
            self.ids.append(dict(attrs)["id"])

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            return
        self.stack.pop()
        if tag == "svg":
            self.in_svg -= 1
        if tag in ("td", "th") and self.cell is not None and self.table is not None:
            if self.cell["tag"] == "th":
                self.table["headers"].append(self.cell["text"].strip())
            else:
                self.table["rows"][-1].append(self.cell)
            self.cell = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell["text"] += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text())
    page.close()
    return page


@pytest.fixture(scope="module")
def report(run_dirs, benchmark_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report"
    root = run_dirs["single"].parent
    # A sweep folder (expanded into its jobs) and a run directory, as a user would pass them.
    assert (
        main(
            [
                str(root / "sweep"),
                str(run_dirs["single"]),
                "-o",
                str(out),
                "--benchmark-csv",
                str(benchmark_csv),
            ]
        )
        == 0
    )
    return out


def rows_by_run(page: Page) -> dict[str, dict[str, dict]]:
    table = page.tables["runs"]
    return {row[0]["value"]: dict(zip(table["headers"], row, strict=True)) for row in table["rows"] if row}


def test_table_values_equal_run_json(report, run_dirs):
    rows = rows_by_run(parse(report / "index.html"))
    assert set(rows) == {str(p) for p in run_dirs.values()}
    markdown = (report / "index.md").read_text()
    for run_dir in run_dirs.values():
        record = json.loads((run_dir / "run.json").read_text())
        row = rows[str(run_dir)]
        assert record["metrics"], "the run recorded test metrics"
        for name, value in record["metrics"].items():
            assert float(row[name]["value"]) == value  # exact: data-value holds the full float
            assert f"{value:.4f}" in markdown
        assert float(row["duration (s)"]["value"]) == record["duration_s"]
        assert row["status"]["text"] == record["status"] == "completed"
        assert (row["task"]["text"], row["model"]["text"], row["data"]["text"]) == (
            record["task"],
            record["model"],
            record["data"],
        )
        assert row["overrides"]["text"] == " ".join(record["overrides"])
        assert "optim.lr=" in row["overrides"]["text"]
        # Links to the run's curves (relative to the report folder) lead to the real file.
        curves = [link for link in row["files"]["links"] if link.endswith("curves.png")]
        assert curves and (report / curves[0]).resolve() == (run_dir / "curves.png").resolve()


def best_val(run_dir: Path, name: str = "val/acc_top1") -> float:
    with open(run_dir / "metrics.csv", newline="") as f:
        return max(float(r[name]) for r in csv.DictReader(f) if r.get(name))


def test_best_val_is_the_best_logged_value_of_the_task_monitor(report, run_dirs):
    rows = rows_by_run(parse(report / "index.html"))
    for run_dir in run_dirs.values():
        row = rows[str(run_dir)]
        assert row["monitor"]["text"] == "val/acc_top1"
        assert float(row["best val"]["value"]) == best_val(run_dir)


def test_figure_has_one_point_per_run_with_the_benchmark_row(report, run_dirs, benchmark_csv):
    with open(benchmark_csv, newline="") as f:
        eager = [r for r in csv.DictReader(f) if r["backend"] == "eager"]
    assert len(eager) == 1
    points = json.loads((report / "figure1.json").read_text())["points"]
    assert sorted(p["run_dir"] for p in points) == sorted(str(p) for p in run_dirs.values())
    for point in points:
        assert point["score"] == best_val(Path(point["run_dir"]))
        assert point["samples_per_sec"] == float(eager[0]["samples_per_sec"])
        assert point["peak_mem_mb"] == float(eager[0]["peak_mem_mb"])
        # One model: every bubble is the largest. The in-process benchmark measures its RSS rise, which is 0
        # when the allocator reuses pages the test process already holds (seen in the full suite): the
        # smallest bubble then, the figure's rule for an unmeasured memory.
        assert math.isclose(point["area"], MAX_AREA if point["peak_mem_mb"] else MIN_AREA)
    svg = parse(report / "figure1.svg")
    assert sorted(i for i in svg.ids if i.startswith("point-")) == [f"point-{i}" for i in range(len(points))]
    assert (report / "figure1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_is_valid_and_self_contained(report):
    page = parse(report / "index.html")
    assert page.doctype and not page.errors and page.stack == []
    for name in ("runs", "benchmark"):
        table = page.tables[name]
        assert table["headers"] and all(len(row) == len(table["headers"]) for row in table["rows"] if row)
    assert "figure1" in page.ids and any(i.startswith("point-") for i in page.ids)  # the SVG is inline
    text = (report / "index.html").read_text()
    assert "<script>" in text and "addEventListener" in text and "src=" not in text.split("<script>")[1]
    assert "<link" not in text  # no external stylesheet


def test_benchmark_table_in_report_lists_each_csv_row(report, benchmark_csv):
    with open(benchmark_csv, newline="") as f:
        expected = list(csv.DictReader(f))
    table = parse(report / "index.html").tables["benchmark"]
    rows = [dict(zip(table["headers"], r, strict=True)) for r in table["rows"] if r]
    assert [r["backend"]["text"] for r in rows] == [r["backend"] for r in expected]
    assert [float(r["samples/s"]["value"]) for r in rows] == [float(r["samples_per_sec"]) for r in expected]


def test_paths_without_run_json_are_named(run_dirs, tmp_path, capsys):
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    assert main([str(empty), str(tmp_path / "missing"), "-o", str(tmp_path / "r")]) == 3
    error = capsys.readouterr().err
    assert str(empty) in error and str(tmp_path / "missing") in error and "run.json" in error
    assert not (tmp_path / "r" / "index.md").exists()
    # With a valid run beside it: the report is made, the empty path named in a warning ...
    assert main([str(empty), str(run_dirs["single"]), "-o", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert "Warning" in captured.err and str(empty) in captured.err
    assert "Not in Figure 1" in captured.err  # no benchmark CSV: the run is listed, not drawn
    assert (tmp_path / "r" / "index.md").is_file() and not (tmp_path / "r" / "figure1.png").exists()
    # ... unless --strict.
    assert main([str(empty), str(run_dirs["single"]), "-o", str(tmp_path / "s"), "--strict"]) == 3


def test_join_prefers_the_row_at_the_runs_input_size():
    from litzoo.report.figure import join
    from litzoo.report.runs import RunSummary

    run = RunSummary(
        path=Path("/runs/a"),
        status="completed",
        task="classification",
        model="resnet18",
        data="digits",
        overrides=["data.image_size=16"],
        metrics={},
        monitor="val/acc_top1",
        monitor_value=0.5,
    )
    rows = [
        {
            "model": "resnet18",
            "task": "classification",
            "data": "digits",
            "backend": "eager",
            "device": "cpu",
            "samples_per_sec": 10.0,
            "peak_mem_mb": 100.0,
            "overrides": "data.image_size=16",
        },
        {
            "model": "resnet18",
            "task": "classification",
            "data": "digits",
            "backend": "eager",
            "device": "cpu",
            "samples_per_sec": 20.0,
            "peak_mem_mb": 50.0,
            "overrides": "data.image_size=32",
        },
        {
            "model": "resnet18",
            "task": "classification",
            "data": "digits",
            "backend": "onnx",
            "device": "cpu",
            "samples_per_sec": 30.0,
            "peak_mem_mb": 50.0,
            "overrides": "data.image_size=16",
        },
    ]
    points, left_out = join([run], rows, "eager", None)
    assert [p.samples_per_sec for p in points] == [10.0] and not left_out
    assert [p.samples_per_sec for p in join([run], rows, "onnx", None)[0]] == [30.0]
    points, left_out = join([run], rows, "eager", "cuda")
    assert not points and "python -m litzoo.benchmark task=classification model=resnet18" in left_out[0][1]
