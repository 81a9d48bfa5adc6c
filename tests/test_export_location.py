"""Where an exported experiment file goes: Hydra finds `experiment=NAME` only as
`<config-dir>/experiment/NAME.yaml`, so that is where `-o` writes it."""

from __future__ import annotations

import pytest
from conftest import compose
from omegaconf import OmegaConf
from test_export import body, fake_run_dir

from litzoo.platform.export_config import main


@pytest.mark.parametrize("given", ["team/lr005.yaml", "team/lr005", "team/experiment/lr005.yaml"])
def test_the_file_lands_where_config_dir_finds_it(given, tmp_path, capsys):
    run_dir = fake_run_dir(tmp_path / "run", ["optim.lr=0.05"])
    assert main([str(run_dir), "-o", str(tmp_path / given)]) == 0
    written = tmp_path / "team" / "experiment" / "lr005.yaml"
    printed = capsys.readouterr().out
    assert f"Wrote {written}" in printed
    assert not (tmp_path / "team" / "lr005.yaml").exists()
    if "experiment" not in given:  # the user is told why it is not where they asked
        assert f"not {tmp_path / 'team' / 'lr005.yaml'}" in printed
    assert f"python train.py --config-dir {tmp_path / 'team'} experiment=lr005" in printed
    assert OmegaConf.create(body(written.read_text())).optim.lr == 0.05
    # ... and the command it prints composes.
    assert compose(["experiment=lr005"], config_dirs=[tmp_path / "team"]).optim.lr == 0.05


def test_a_directory_is_a_config_dir(tmp_path, capsys):
    run_dir = fake_run_dir(tmp_path / "run", ["optim.lr=0.05"])
    (tmp_path / "team").mkdir()
    assert main([str(run_dir), "-o", str(tmp_path / "team"), "--name", "shared"]) == 0
    assert (tmp_path / "team" / "experiment" / "shared.yaml").is_file()
    assert f"--config-dir {tmp_path / 'team'} experiment=shared" in capsys.readouterr().out
