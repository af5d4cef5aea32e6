from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from _study_setup import MODELS_YAML, ROOT, STUDIES, tiny_dict, write_study

from hepscale.study import expand_runs, format_plan, load_study, main, plan_rows


def test_plan_numbers(tmp_path: Path, jets_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny_dict(tmp_path / "out", jets_file)
    data["grid"] = {"models": ["Pico", "XS"], "flops": [1.0e9]}
    data["plan"] = {"sustained_flops": 1.0e6}
    study = load_study(write_study(tmp_path / "s.yaml", data))
    rows = plan_rows(study, expand_runs(study))
    vocab = 8 * 4 * 4 + 3
    B, S = 8, 24
    for row in rows:
        shape = MODELS_YAML[row.model]
        n_ne = shape["n_params_non_embedding"]
        n_tot = n_ne + vocab * shape["d_model"] + S * shape["d_model"]  # tied head, learned positions
        assert row.n_params == n_ne and row.n_params_total == n_tot
        # isoFLOP budgets with C = 6 N_incl B S steps, the generation study's definition
        assert row.steps == math.ceil(1.0e9 / (6 * n_tot * B * S))
        assert row.flops == pytest.approx(6 * n_tot * B * S * row.steps) == row.flops_total
        assert row.tokens == pytest.approx(row.steps * B * 60.0)  # plan.mean_jet_tokens before the data exists
    hours = sum(6 * r.n_params_total * B * S * r.steps for r in rows) / 1.0e6 / 3600
    text = format_plan(study, rows)
    assert f"estimate {hours:.3g} GPU-hours" in text and "1e+06 FLOP/s" in text
    assert main(["plan", str(tmp_path / "s.yaml")]) == 0
    out = capsys.readouterr().out
    assert all(r.run_id in out for r in rows) and "total compute" in out
    # the non-embedding variant, kept and labelled: more steps for small models with a big vocabulary
    data["train"]["overrides"] = [*data["train"].get("overrides", []), "budget.flops_params=non_embedding"]
    study = load_study(write_study(tmp_path / "n.yaml", data))
    for row, ne in zip(rows, plan_rows(study, expand_runs(study))):
        assert ne.steps == math.ceil(1.0e9 / (6 * ne.n_params * B * S)) >= row.steps
        assert ne.flops == pytest.approx(6 * ne.n_params * B * S * ne.steps)
    assert "as budget.flops_params says" in format_plan(study, plan_rows(study, expand_runs(study)))


#: runs ``python -m hepscale study plan STUDY`` and fails when torch was imported on the way
_PLAN_WITHOUT_TORCH = """
import runpy, sys
sys.argv = ["hepscale", "study", "plan", sys.argv[1]]
try:
    runpy.run_module("hepscale", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    assert exit.code == 0, f"exit status {exit.code}"
torch = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not torch, f"study plan imported {torch[:5]}"
print("torch was not imported")
"""


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_plan_never_imports_torch(path: Path) -> None:
    res = subprocess.run([sys.executable, "-c", _PLAN_WITHOUT_TORCH, str(path.relative_to(ROOT))], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert "total compute" in res.stdout and res.stdout.rstrip().endswith("torch was not imported")
