from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from hepscale import evaluate as evaluate_cli
from hepscale.cli import main as cli_main
from hepscale.jets import dataset
from hepscale.metrics import swd

FAST = ["--n", "800", "--bootstraps", "3", "--projections", "32", "--seed", "5"]


def _make_jets(n: int, seed: int, *, spread: float = 0.1) -> ak.Array:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(25, n) + 3
    total = int(counts.sum())
    cons = ak.zip(
        {
            "pt": rng.exponential(20.0, total) + 1.0,
            "eta": rng.normal(0.0, spread, total),
            "phi": rng.normal(0.0, spread, total),
            "mass": np.zeros(total),
        }
    )
    return dataset.build_jets(ak.unflatten(cons, counts), label=0, source="test.root")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evaluate")
    ref = _make_jets(1800, 1)
    gen = _make_jets(900, 2, spread=0.13)
    out = {"reference": root / "reference.parquet", "samples": root / "samples.parquet"}
    dataset.write_jets(out["reference"], ref)
    dataset.write_jets(out["samples"], gen)
    bad = ak.with_field(gen, ak.where(np.arange(len(gen)) < 7, np.nan, gen.tau21), "tau21")
    out["bad"] = root / "bad.parquet"
    dataset.write_jets(out["bad"], bad)
    return out


def _run_dir(tmp_path: Path, files: dict[str, Path], *, result: bool = True) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "samples.parquet").write_bytes(files["samples"].read_bytes())
    if result:
        (run / "result.json").write_text(json.dumps({"final_val_loss": 1.25, "evaluation": {"old": 1}}))
    return run


def test_run_dir_result_is_merged_and_matches_library(tmp_path: Path, files: dict[str, Path]) -> None:
    run = _run_dir(tmp_path, files)
    rc = cli_main(["evaluate", str(run), "--reference", str(files["reference"]), *FAST])
    assert rc == 0
    result = json.loads((run / "result.json").read_text())
    assert result["final_val_loss"] == 1.25
    ev = result["evaluation"]
    assert "old" not in ev
    names = list(swd.DEFAULT_OBSERVABLES)
    gen = dataset.observable_matrix(dataset.read_jets(files["samples"], columns=names), names)
    ref = dataset.observable_matrix(dataset.read_jets(files["reference"], columns=names), names)
    expected = swd.bootstrap_swd(gen, ref, n_jets=800, n_bootstraps=3, n_projections=32, seed=5)
    assert ev["swd"]["mean"] == pytest.approx(expected.swd, rel=1e-12)
    assert ev["swd"]["floor_mean"] == pytest.approx(expected.floor, rel=1e-12)
    assert ev["swd"]["per_observable"]["mass"]["mean"] == pytest.approx(expected.per_observable["mass"]["mean"])
    assert ev["n_generated"] == 900 and ev["n_reference"] == 1800
    for name in names:
        assert (run / "evaluation" / f"{name}.png").is_file()
        assert (run / "evaluation" / f"{name}.pdf").is_file()
    # broader constituents give heavier jets: the SWD is above its floor
    assert ev["swd"]["mean"] > ev["swd"]["floor_mean"]


def test_samples_file_writes_evaluation_json(tmp_path: Path, files: dict[str, Path]) -> None:
    out = tmp_path / "out"
    rc = evaluate_cli.main(
        [str(files["samples"]), "--reference", str(files["reference"]), *FAST, "--output", str(out), "--no-figures",
         "--observables", "mass,tau21", "--no-floor", "--jetnet"]
    )
    assert rc == 0
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["swd"]["observables"] == ["mass", "tau21"]
    assert ev["swd"]["floor_mean"] is None
    assert not list(out.glob("*.png"))
    # JetNet-style metrics on the leading 30 constituents, n_eval lowered to the sample size
    assert ev["jetnet"]["n_eval"] == 900
    assert ev["jetnet"]["w1m"]["value"] > 0 and len(ev["jetnet"]["w1p"]["per_feature"]) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--observables", "mass,nonexistent"], "nonexistent"),
        (["--n", "5000"], "n_jets=5000"),
    ],
)
def test_bad_requests_fail_with_a_clear_message(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    rc = evaluate_cli.main([str(files["samples"]), "--reference", str(files["reference"]), *FAST, *extra,
                        "--output", str(tmp_path)])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "evaluation.json").exists()


def test_unfinished_run_is_refused(tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    run = _run_dir(tmp_path, files, result=False)
    assert evaluate_cli.main([str(run), "--reference", str(files["reference"]), *FAST]) == 2
    assert "no result.json" in capsys.readouterr().err
    assert not (run / "result.json").exists()


def test_nonfinite_observables_error_or_documented_drop(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(files["bad"]), "--reference", str(files["reference"]), *FAST, "--output", str(tmp_path), "--no-figures"]
    assert evaluate_cli.main(args) == 2
    err = capsys.readouterr().err
    assert "7 jet(s)" in err and "tau21" in err
    assert evaluate_cli.main([*args, "--drop-nonfinite"]) == 0
    ev = json.loads((tmp_path / "evaluation.json").read_text())
    assert ev["dropped_nonfinite"] == {"generated": 7, "reference": 0}
    assert ev["n_generated"] == 893
