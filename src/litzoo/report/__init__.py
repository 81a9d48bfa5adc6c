"""Reports over run directories: ``python -m litzoo.report <run dirs or sweep dirs> -o report/``.

Reads each run directory (``run.json``, ``.hydra/config.yaml``, ``metrics.csv``) through
:class:`litzoo.platform.run_dir.RunDir` and writes ``index.md`` and a static ``index.html``
(a sortable table of metrics, durations, configs and links to each run's curves), plus
Figure 1 — inference throughput against validation score, bubble area proportional to memory —
from the runs joined with benchmark CSVs (``--benchmark-csv``, :mod:`litzoo.benchmark`).
Nothing here imports torch.
"""
