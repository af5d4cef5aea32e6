from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hepscale.cli import COMMANDS
from hepscale.cli import main as cli_main
from hepscale.quickstart import main as quickstart_main


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "hepscale", "--help"], capture_output=True, text=True, check=True).stdout
    for name in COMMANDS:
        assert name in out
    bad = subprocess.run([sys.executable, "-m", "hepscale", "frobnicate"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command 'frobnicate'" in bad.stderr


def test_generate_runs_as_module(tmp_path):
    out = tmp_path / "z.root"
    res = subprocess.run([sys.executable, "-m", "hepscale.generate", "--process", "zqq", "--events", "3", "--output",
                          str(out), "--no-progress"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "wrote 3 zqq events" in res.stdout and out.stat().st_size > 0
    assert "PYTHIA" not in res.stdout  # the generator banner stays quiet


def test_quickstart_study_is_the_cpu_phase1_study():
    import math

    from hepscale.models.gpt import n_params_non_embedding, size_config
    from hepscale.quickstart import QUICKSTART_STUDY
    from hepscale.resources import project_file
    from hepscale.study import expand_runs, load_study

    study = load_study(project_file(QUICKSTART_STUDY))
    runs = expand_runs(study, train_config=project_file(Path(study.train.config)))
    sizes = {r.model for r in runs}
    params = [n_params_non_embedding(size_config(s, vocab_size=100)) for s in sizes]
    assert len(sizes) >= 4 and math.log10(max(params) / min(params)) >= 1.5
    assert {f.law for f in study.fit.fits} >= {"log", "proxy"}


def test_jets_only_quickstart_end_to_end_and_resume(tmp_path, capsys):
    args = ["--jets-only", "--output", str(tmp_path / "qs"), "--events", "150", "--no-progress", "--workers", "2"]
    assert quickstart_main(args) == 0
    out = capsys.readouterr().out
    assert "Tbqq" in out and "QCD" in out and "figures:" in out
    assert (tmp_path / "qs" / "jets" / "figures" / "msoftdrop.png").is_file()
    events = tmp_path / "qs" / "events" / "ttbar.root"
    mtime = events.stat().st_mtime_ns
    assert cli_main(["quickstart", *args]) == 0  # a second run reuses the generated events
    assert events.stat().st_mtime_ns == mtime
