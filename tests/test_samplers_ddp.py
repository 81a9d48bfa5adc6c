"""Self-sharding samplers under real Lightning DDP: 2 CPU processes (gloo), skewed lengths.

The training runs in a subprocess (Lightning's ddp strategy re-launches the script for rank 1).
It must finish (no hang at the end of an epoch), and the recorded index streams must be equal in
length on both ranks, disjoint apart from the documented repeated batches, complete, and reshuffled
every epoch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "ddp_sampler_script.py"
EPOCHS = 3
NUM_SAMPLES = 205  # skewed_lengths() in the script: 180 short, 21 long, 4 singletons


def _run_ddp(outdir: Path, *args: str) -> dict[tuple[int, int], dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("LOCAL_RANK", None)  # we are not inside a launched rank ourselves
    try:
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), str(outdir), *args, "--epochs", str(EPOCHS)],
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
    except subprocess.TimeoutExpired as exc:  # a hang at the end of an epoch lands here
        pytest.fail(f"DDP run did not finish in {exc.timeout} s (ranks out of step?)\n{exc.stderr}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert (outdir / "done").exists()
    return {
        (rank, epoch): json.loads((outdir / f"rank{rank}_epoch{epoch}.json").read_text())
        for rank in range(2)
        for epoch in range(EPOCHS)
    }


@pytest.mark.parametrize(
    "sampler",
    # the sharding logic is shared (and property-tested for all samplers in test_samplers.py);
    # one DDP run by default keeps the suite fast
    ["fixed", pytest.param("token", marks=pytest.mark.slow), pytest.param("sorted", marks=pytest.mark.slow)],
)
def test_ddp_two_processes_equal_disjoint_complete_reshuffled(tmp_path, sampler):
    records = _run_ddp(tmp_path, "--sampler", sampler)
    check_train_shares(records, NUM_SAMPLES)
    if sampler != "sorted":  # the skew is real: batch sizes differ a lot between buckets
        sizes = [len(b) for b in records[(0, 0)]["global_batches"]]
        assert max(sizes) >= 4 * min(sizes)


def test_ddp_datamodule_default_loaders(tmp_path):
    """BaseDataModule under real DDP: its trainer_kwargs() switch Lightning's sampler off, its
    default random batches shard like the samplers above, and validation sees every sample once."""
    records = _run_ddp(tmp_path, "--datamodule")
    check_train_shares(records, 197)
    assert len(records[(0, 0)]["global_batches"]) == 25  # odd: one batch is repeated per epoch
    for epoch in range(EPOCHS):
        val = [json.loads((tmp_path / f"rank{rank}_val{epoch}.json").read_text()) for rank in range(2)]
        assert val[0]["world_size"] == 2
        assert len(val[0]["batches"]) == len(val[1]["batches"]) == 3  # 5 batches of 8 split into 6
        seen = sorted(i for v in val for b in v["batches"] for i in b)
        assert seen == list(range(37))  # disjoint and complete: nothing evaluated twice


def check_train_shares(records: dict[tuple[int, int], dict], n: int) -> None:
    shares = []
    for epoch in range(EPOCHS):
        r0, r1 = records[(0, epoch)], records[(1, epoch)]
        assert r0["world_size"] == r1["world_size"] == 2
        assert r0["global_batches"] == r1["global_batches"]  # every rank planned the same epoch
        total = len(r0["global_batches"])
        per_rank = -(-total // 2)
        # equal batch counts, as len(dataloader) promised, on both ranks
        assert (
            len(r0["batches"])
            == len(r1["batches"])
            == r0["len_dataloader"]
            == r1["len_dataloader"]
            == per_rank
        )
        # rank r takes global batches r, r + 2, ...; the list is padded from its start
        padded = [r0["global_batches"][p % total] for p in range(2 * per_rank)]
        assert r0["batches"] == padded[0::2] and r1["batches"] == padded[1::2]
        seen0 = [i for b in r0["batches"] for i in b]
        seen1 = [i for b in r1["batches"] for i in b]
        assert set(seen0) | set(seen1) == set(range(n))  # complete
        repeated = {i for b in padded[total:] for i in b}
        assert not (set(seen0) & set(seen1)) - repeated  # disjoint apart from the repeated batches
        assert len(seen0) == len(set(seen0)) and len(seen1) == len(set(seen1))
        shares.append(sorted(seen0))
    assert shares[0] != shares[1] != shares[2]  # reshuffled every epoch
    assert records[(0, 0)]["global_batches"] != records[(0, 1)]["global_batches"]
