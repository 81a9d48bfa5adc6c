"""The report pages: one table model, written as Markdown and as a static HTML page.

The HTML page needs nothing beside it but the figure files: styles and the sorting script
(a click on a column header sorts by it, numerically where the cells are numbers) are inline,
and Figure 1's SVG is embedded. Each cell carries its exact value in ``data-value`` (a number
at full precision), so sorting, and anyone checking the page, sees the run's own value rather
than its rounded display. Links to each run's files are relative to the report folder.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litzoo.report.runs import RunSummary


@dataclass
class Cell:
    text: str
    value: Any = None  # what the column sorts by (and the exact number shown rounded)
    links: tuple[tuple[str, str], ...] = ()  # (label, href)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]]


def _number(value: Any, digits: int = 4) -> Cell:
    if value is None:
        return Cell("", None)
    if isinstance(value, float):
        return Cell(f"{value:.{digits}f}", value)
    return Cell(str(value), value)


def run_table(runs: Sequence[RunSummary], folder: Path) -> Table:
    """Metrics, durations, configs and links of every run: one row per run."""
    metric_names = sorted({name for run in runs for name in run.metrics})
    headers = ["run", "status", "task", "model", "data", "monitor", "best val", *metric_names]
    headers += ["duration (s)", "seed", "global batch", "overrides", "files"]
    rows = []
    for run in runs:
        links = tuple((name, _href(path, folder)) for name, path in run.files.items())
        rows.append(
            [
                Cell(run.path.name, str(run.path), ((run.path.name, _href(run.path, folder)),)),
                Cell(run.status, run.status),
                Cell(run.task, run.task),
                Cell(run.model, run.model),
                Cell(run.data, run.data),
                Cell(run.monitor or "", run.monitor),
                _number(run.monitor_value),
                *(_number(run.metrics.get(name)) for name in metric_names),
                _number(run.duration_s, 1),
                _number(run.seed),
                _number(run.global_batch_size),
                Cell(" ".join(run.overrides), " ".join(run.overrides)),
                Cell("", None, links),
            ]
        )
    return Table(headers, rows)


BENCHMARK_COLUMNS = (
    ("model", "model", None),
    ("task", "task", None),
    ("backend", "backend", None),
    ("device", "device", None),
    ("batch", "batch_size", None),
    ("input", "input_size", None),
    ("samples/s", "samples_per_sec", 1),
    ("latency median (ms)", "latency_ms_median", 2),
    ("latency p90 (ms)", "latency_ms_p90", 2),
    ("peak mem (MB)", "peak_mem_mb", 1),
    ("params", "params", None),
    ("threads", "threads", None),
    ("runtime", "runtime", None),
    ("date", "date", None),
)


def benchmark_table(rows: Sequence[dict[str, Any]]) -> Table:
    body = [
        [
            _number(row.get(key), digits)
            if digits is not None
            else Cell(str(row.get(key) or ""), row.get(key))
            for _, key, digits in BENCHMARK_COLUMNS
        ]
        for row in rows
    ]
    return Table([header for header, _, _ in BENCHMARK_COLUMNS], body)


def _href(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), folder.resolve())).as_posix()


# --- Markdown -----------------------------------------------------------------------------------
def _md_cell(cell: Cell) -> str:
    parts = [cell.text] if cell.text and not (cell.links and cell.links[0][0] == cell.text) else []
    parts += [f"[{label}]({href})" for label, href in cell.links]
    return " ".join(parts).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    lines = ["| " + " | ".join(table.headers) + " |", "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def markdown_page(
    runs: Table,
    benchmarks: Table | None,
    figure: dict[str, Path] | None,
    left_out: Sequence[tuple[RunSummary, str]],
) -> str:
    parts = ["# litzoo report", "", f"{len(runs.rows)} run(s).", "", "## Runs", "", markdown_table(runs), ""]
    parts += ["## Figure 1: inference throughput vs validation score", ""]
    if figure:
        parts += ["![Figure 1](figure1.png)", "", "[SVG](figure1.svg) · [points (JSON)](figure1.json)", ""]
    else:
        parts += ["Not drawn: no run could be joined with a benchmark row (see below).", ""]
    parts += [f"- not drawn: {run.label}: {reason}" for run, reason in left_out]
    if benchmarks is not None:
        parts += ["", "## Inference benchmark", "", markdown_table(benchmarks)]
    return "\n".join(parts).rstrip() + "\n"


# --- HTML ---------------------------------------------------------------------------------------
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:13px;margin-bottom:2em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f0f0f0;cursor:pointer;user-select:none}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure svg{max-width:100%;height:auto}
"""
# Click a header: sort its table's rows by that column (numbers as numbers, empty cells last).
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], asc = !th.classList.contains("asc");
    table.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
    th.classList.add(asc ? "asc" : "desc");
    var key = function (row) { var c = row.cells[col]; return c.hasAttribute("data-value") ? c.getAttribute("data-value") : c.textContent; };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      if (x === "") return 1; if (y === "") return -1;
      var d = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? d : -d;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""


def _html_cell(cell: Cell) -> str:
    numeric = isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool)
    attributes = f' data-value="{html.escape(repr(cell.value) if numeric else str(cell.value), quote=True)}"'
    if cell.value is None:
        attributes = ' data-value=""'
    if numeric:
        attributes += ' class="num"'
    if cell.links and cell.links[0][0] == cell.text:
        content = " ".join(
            f'<a href="{html.escape(h, quote=True)}">{html.escape(label)}</a>' for label, h in cell.links
        )
    else:
        content = html.escape(cell.text)
        content += "".join(
            f' <a href="{html.escape(h, quote=True)}">{html.escape(label)}</a>' for label, h in cell.links
        )
    return f"<td{attributes}>{content.strip()}</td>"


def html_table(table: Table, table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = "\n".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in table.rows)
    return f'<table class="sortable" id="{table_id}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def inline_svg(path: Path) -> str:
    """The SVG file's <svg> element, without its XML declaration and doctype (for embedding)."""
    text = path.read_text()
    return re.sub(r"^.*?(?=<svg)", "", text, count=1, flags=re.S)


def html_page(
    runs: Table,
    benchmarks: Table | None,
    figure: dict[str, Path] | None,
    left_out: Sequence[tuple[RunSummary, str]],
) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><title>litzoo report</title>',
        f"<style>{STYLE}</style></head>",
        "<body>",
        "<h1>litzoo report</h1>",
        f"<p>{len(runs.rows)} run(s). Click a column header to sort.</p>",
        "<h2>Runs</h2>",
        html_table(runs, "runs"),
        "<h2>Figure 1: inference throughput vs validation score</h2>",
    ]
    if figure:
        parts += [
            f'<figure id="figure1">{inline_svg(figure["svg"])}',
            '<figcaption>Bubble area ∝ peak inference memory. <a href="figure1.png">PNG</a> · '
            '<a href="figure1.svg">SVG</a> · <a href="figure1.json">points (JSON)</a></figcaption></figure>',
        ]
    else:
        parts.append("<p>Not drawn: no run could be joined with a benchmark row.</p>")
    if left_out:
        items = "".join(
            f"<li>{html.escape(run.label)}: {html.escape(reason)}</li>" for run, reason in left_out
        )
        parts.append(f'<ul id="not-drawn">{items}</ul>')
    if benchmarks is not None:
        parts += ["<h2>Inference benchmark</h2>", html_table(benchmarks, "benchmark")]
    parts += [f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"
