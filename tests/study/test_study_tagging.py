"""The tagging study: its checks at load time, grid, plan, job commands, DAG, and a small local study
of taggers on synthetic top and QCD jets from the jets to the runs table, summary, figures and fits."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _study_setup import (
    ROOT,
    TAGGERS_YAML,
    _nested_set,
    labelled_jets,
    tagging_dict,
    tiny_dict,
    write_study,
)

from hepscale.config import ConfigError
from hepscale.jets.dataset import write_jets
from hepscale.study import (
    data_keys,
    data_paths,
    expand_runs,
    format_plan,
    job_commands,
    load_study,
    plan_rows,
)
from hepscale.train.config import load_run_config, run_id


@pytest.fixture(scope="module")
def tagging_jets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tagging_jets") / "jets.parquet"
    write_jets(path, labelled_jets(150, seed=5))
    return path


def _generated(output: Path) -> dict[str, Any]:
    """A tagging study of generated top and QCD jets (never run here)."""
    data = tagging_dict(output, Path("unused"))
    data["data"] = {"generate": {"processes": ["ttbar", "qcd"], "events": 100},
                    "tagging": {"classes": ["QCD", "Tbqq"]}}
    return data


# ---------------------------------------------------------------------------- checks at load time
@pytest.mark.parametrize(("key", "value", "message"), [
    ("grid.features", ["kin", "full"],
     r"grid\.features\[1\]: feature set 'full' needs the constituent field\(s\) d0, d0err, dz, dzerr, which "
     r"data\.generate \(Pythia 8\) does not have \(jets generated with Pythia 8 have no track displacement"),
    ("data.tokenizer", {"n_pt": 8}, r"data\.tokenizer: a tagging study reads its jets as particles and has no tokenizer"),
    ("grid.models", ["Pico", "Huge"], r"grid\.models\[1\]: 'Huge' is not a size of taggers\.yaml \(Pico, Nano, "),
    ("train.config", str(ROOT / "configs" / "train" / "quick_cpu.yaml"),
     r"train\.config: .*quick_cpu\.yaml is a training config of task 'generation'; a tagging study needs one "
     r"with task: tagging"),
    ("grid.tokens", [1000], r"grid\.tokens: a tagging study counts jets: use grid\.jets"),
    ("grid.unique_tokens", [1000], r"grid\.unique_tokens: a tagging study counts jets: use grid\.unique_jets"),
    ("grid.features", ["kinematics"], r"grid\.features\[0\]: 'kinematics' is not a feature set \(kin, kinpid, full\)"),
    ("grid.max_particles", [0], r"grid\.max_particles: expected a non-empty list of positive particle counts"),
    ("data.tagging.classes", ["QCD"], r"data\.tagging\.classes: expected at least two classes"),
    ("data.tagging.classes", ["QCD", "Top"], r"data\.tagging\.classes\[1\]: 'Top' is not a truth label"),
    ("data.tagging.classes", ["QCD", "Hbb"],
     r"data\.tagging\.classes\[1\]: no jet of data\.generate\.processes \['ttbar', 'qcd'\] is labelled 'Hbb' "
     r"\(add one of \['hbb'\]\)"),
    ("data.tagging.fractions", [0.6, 0.3, 0.2], r"data\.tagging\.fractions: expected fractions that add up to 1"),
    ("data.reference", "ref.parquet", r"data\.reference: a tagging study has no SWD reference"),
    ("fit.fits", [{"name": "p", "law": "proxy"}], r"fit\.fits\[0\]\.options: a tagging study has no SWD"),
    ("task", "regression", r"task: expected one of \['generation', 'tagging'\], got 'regression'"),
])
def test_tagging_study_errors_name_the_field(tmp_path: Path, key: str, value: Any, message: str) -> None:
    path = write_study(tmp_path / "s.yaml", _nested_set(_generated(tmp_path / "out"), key, value))
    with pytest.raises(ConfigError, match=r"s\.yaml: " + message):
        load_study(path)


def test_feature_sets_are_checked_against_the_jets(tmp_path: Path, tagging_jets: Path) -> None:
    """'full' needs track displacement: refused for jets without it, taken for jets with it."""
    data = tagging_dict(tmp_path / "out", tagging_jets)
    data["grid"]["features"] = ["full"]
    with pytest.raises(ConfigError, match=r"grid\.features\[0\]: feature set 'full' needs the constituent field\(s\) "
                                          rf"d0, d0err, dz, dzerr, which data\.jets {re.escape(str(tagging_jets))}"):
        load_study(write_study(tmp_path / "s.yaml", data))
    with_tracks = tmp_path / "tracks.parquet"
    write_jets(with_tracks, labelled_jets(10, seed=1, displacement=True))
    data["data"]["jets"] = str(with_tracks)
    assert load_study(write_study(tmp_path / "t.yaml", data)).grid.features == ["full"]
    # the base config's feature set counts when the grid has no feature axis
    del data["grid"]["features"]
    data["data"]["jets"] = str(tagging_jets)
    data["train"]["overrides"].append("data.features=full")
    with pytest.raises(ConfigError, match=r"tagger_cpu\.yaml: data\.features: feature set 'full' needs"):
        load_study(write_study(tmp_path / "u.yaml", data))


@pytest.mark.parametrize(("key", "value", "message"), [
    ("data.tagging", {"classes": ["QCD", "Tbqq"]}, r"data\.tagging: only a tagging study \(task: tagging\)"),
    ("grid.features", ["kin"], r"grid\.features: only a tagging study \(task: tagging\) has this axis"),
    ("grid.jets", [1000], r"grid\.jets: a generation study counts tokens: use grid\.tokens"),
    ("train.config", str(ROOT / "configs" / "train" / "tagger_cpu.yaml"),
     r"train\.config: .*tagger_cpu\.yaml is a training config of task 'tagging'; a generation study"),
])
def test_generation_study_refuses_tagging_keys(tmp_path: Path, key: str, value: Any, message: str) -> None:
    data = tiny_dict(tmp_path / "out", tmp_path / "jets.parquet")
    data["grid"].pop("steps") if key == "grid.jets" else None
    path = write_study(tmp_path / "s.yaml", _nested_set(data, key, value))
    with pytest.raises(ConfigError, match=r"s\.yaml: " + message):
        load_study(path)


def test_defaults_of_a_tagging_study(tmp_path: Path) -> None:
    data = _generated(tmp_path / "out")
    del data["fit"], data["data"]["tagging"]
    study = load_study(write_study(tmp_path / "s.yaml", data))
    assert study.data.tagging is not None and study.data.tagging.classes == ["QCD", "Tbqq"]
    assert not hasattr(study.data, "tokenizer")  # the sections are the task's own (a tagged union on task)
    assert [(f.name, f.law) for f in study.fit.fits or []] == [("rejection_vs_loss", "proxy")]
    generation = load_study(write_study(tmp_path / "g.yaml", tiny_dict(tmp_path / "g", tmp_path / "j.parquet")))
    assert generation.task == "generation" and not hasattr(generation.data, "tagging")


# ---------------------------------------------------------------------------- grid, data keys, plan
def test_grid_expands_models_features_particles_and_budgets(tmp_path: Path, tagging_jets: Path) -> None:
    data = tagging_dict(tmp_path / "out", tagging_jets)
    data["grid"].update(max_particles=[16, 32], jets=None, unique_jets=[100, 1000], epochs=[1, 4], max_jets=1000)
    study = load_study(write_study(tmp_path / "s.yaml", data))
    runs = expand_runs(study)
    dataset = data_paths(study)["tagging"]
    assert re.fullmatch(r"data/tagging-[0-9a-f]{12}", dataset) and set(data_paths(study)) == {"jets", "tagging"}
    # models x features x P x (U, epochs) with D = epochs x U <= max_jets: (100, 1), (100, 4), (1000, 1)
    points = sorted((r.model, r.config.data.features, r.config.data.max_particles, r.config.data.unique_jets,
                     r.config.budget.jets) for r in runs)
    expected = sorted((m, f, p, u, d) for m in ("Pico", "Nano") for f in ("kin", "kinpid") for p in (16, 32)
                      for u, d in ((100, 100), (100, 400), (1000, 1000)))
    assert points == expected and len({r.run_id for r in runs}) == len(runs) == 24
    for r in runs:
        cfg = load_run_config(study.train.config, r.overrides)
        assert run_id(cfg) == r.run_id and cfg.task == "tagging"
        assert cfg.data.dataset == dataset and cfg.budget.steps is None and cfg.budget.flops is None
        assert cfg.model.size == r.model and cfg.optim.lr == data["grid"]["lr"][r.model]
        assert f"data.features={cfg.data.features}" in r.overrides
        assert f"data.max_particles={cfg.data.max_particles}" in r.overrides
    # other classes: another tagging dataset, so other run ids; the jets stay the same
    other = copy.deepcopy(data)
    other["data"]["tagging"]["classes"] = ["QCD", "Wqq"]
    study2 = load_study(write_study(tmp_path / "t.yaml", other))
    assert data_keys(study2)["jets"] == data_keys(study)["jets"]
    assert data_keys(study2)["tagging"] != data_keys(study)["tagging"]
    assert not {r.run_id for r in expand_runs(study2)} & {r.run_id for r in runs}
    data["grid"]["max_jets"] = 10
    with pytest.raises(ConfigError, match="grid.max_jets=10 leaves no run"):
        expand_runs(load_study(write_study(tmp_path / "u.yaml", data)))


def test_plan_counts_the_taggers_parameters_and_flops(tmp_path: Path, tagging_jets: Path) -> None:
    from hepscale.models.tagger_sizes import tagger_config, train_flops_per_jet

    data = tagging_dict(tmp_path / "out", tagging_jets)
    data["grid"].update(jets=None, flops=[1.0e9], max_particles=[16, 64])
    data["plan"] = {"sustained_flops": 1.0e6}
    study = load_study(write_study(tmp_path / "s.yaml", data))
    rows = plan_rows(study, expand_runs(study))
    assert len(rows) == 8
    B = 16
    for row in rows:
        shape = TAGGERS_YAML[row.model]
        d, layers, n_classes = shape["d_model"], shape["n_layer"] + shape["n_class_layer"], 2
        assert row.n_params == layers * (12 * d * d + 13 * d) + 3 * d + d * n_classes + n_classes
        n_features = {"kin": 7, "kinpid": 13}[str(row.axes["features"])]
        # the embedding: LayerNorm(F), Linear(F, d), Linear(d, d)
        assert row.n_params_total - row.n_params == 2 * n_features + n_features * d + d + d * d + d
        per_jet = train_flops_per_jet(tagger_config(row.model, n_features=n_features, n_classes=2,
                                                    max_particles=int(row.axes["max_particles"] or 0)))
        assert row.steps == math.ceil(1.0e9 / (per_jet[1] * B))  # C with every layer by default
        assert row.tokens == row.steps * B and row.flops == pytest.approx(per_jet[1] * B * row.steps)
        assert row.flops_total == pytest.approx(per_jet[1] * B * row.steps)
        assert row.unique_tokens is None and row.epochs is None  # before the data exists
    # more particles per jet: more FLOPs per jet, so fewer steps at the same budget
    by = {(r.model, r.axes["features"], r.axes["max_particles"]): r for r in rows}
    assert by[("Nano", "kin", 64)].steps < by[("Nano", "kin", 16)].steps
    text = format_plan(study, rows)
    hours = sum(r.flops_total for r in rows) / 1.0e6 / 3600
    assert f"estimate {hours:.3g} GPU-hours" in text and "D: jets seen" in text
    assert re.search(r"\n\S{16}  Pico  kinpid     64 ", text)


# ---------------------------------------------------------------------------- jobs and DAG
def test_job_commands_of_a_tagging_study(tmp_path: Path, tagging_jets: Path) -> None:
    data = tagging_dict(tmp_path / "out", tagging_jets)
    study = load_study(write_study(tmp_path / "s.yaml", data))
    runs = expand_runs(study)
    commands = job_commands(study, runs)
    assert set(commands) == {"prepare", "train", "evaluate", "finish", "fit"}  # no sampling
    for (job_id, args), run in zip(commands["train"], runs):
        assert args[:2] == ["train", "train.yaml"] and args[-3:] == ["--output", f"runs/{job_id}", "--resume"]
        assert run_id(load_run_config(study.train.config, args[2:-3])) == job_id == run.run_id
    assert commands["evaluate"] == [(r.run_id, ["evaluate", f"runs/{r.run_id}", "--bootstraps", "3", "--seed", "0",
                                                "--label", "Simulation"]) for r in runs]
    assert [name for name, _ in commands["fit"]] == ["rejection_vs_loss"]
    # the evaluation of a tagger draws its ROC: without figures there is nothing to evaluate; the fit stays
    data["evaluation"]["figures"] = False
    no_figures = job_commands(load_study(write_study(tmp_path / "t.yaml", data)), runs)
    assert "evaluate" not in no_figures and [n for n, _ in no_figures["fit"]] == ["rejection_vs_loss"]
    generated = load_study(write_study(tmp_path / "g.yaml", _generated(tmp_path / "g")))
    (first, *_), = [job_commands(generated, expand_runs(generated))["evaluate"]]
    assert first[1][-2:] == ["--label", "Pythia 8"]  # generated jets: no experiment's name on the ROC


def test_condor_dag_of_a_tagging_study(tmp_path: Path, tagging_jets: Path) -> None:
    from hepscale.condor import condor_arguments
    from hepscale.study import main

    path = write_study(tmp_path / "s.yaml", tagging_dict(tmp_path / "out", tagging_jets))
    assert main(["condor", str(path), "--no-prepare"]) == 0
    out = tmp_path / "out"
    study = load_study(path)
    runs = expand_runs(study)
    dag = (out / "study.dag").read_text()
    commands = job_commands(study, runs)
    vars_lines = re.findall(r'^VARS (\w+):\d+ job_id="([^"]+)" args="(.*)"$', dag, flags=re.M)
    assert {kind for kind, _, _ in vars_lines} == {"train", "evaluate"} and "FINAL finish finish.sub" in dag
    for kind in ("train", "evaluate"):
        got = [(j, a) for k, j, a in vars_lines if k == kind]
        device = ["--device", "cuda"] if kind == "evaluate" else []  # the tagger scores the test split on a GPU
        assert got == [(j, condor_arguments([*a, *device]).replace('"', '\\"')) for j, a in commands[kind]]
    assert "PARENT train:3 CHILD evaluate:3" in dag and "sample" not in dag
    tagging = data_paths(study)["tagging"]
    assert f"transfer_input_files = train.yaml, {tagging}, runs/$(job_id)\n" in (out / "train.sub").read_text()
    evaluate = (out / "evaluate.sub").read_text()
    assert f"transfer_input_files = runs/$(job_id), {tagging}\n" in evaluate
    assert "transfer_output_files = runs/$(job_id)/result.json, runs/$(job_id)/evaluation\n" in evaluate


# ---------------------------------------------------------------------------- a small study, end to end
@pytest.fixture(scope="module")
def finished_tagging_study(tmp_path_factory: pytest.TempPathFactory, tagging_jets: Path) -> tuple[Path, dict[str, Any]]:
    from hepscale.study import run_study

    base = tmp_path_factory.mktemp("tagging_study")
    path = write_study(base / "s.yaml", tagging_dict(base / "out", tagging_jets))
    return path, run_study(path, jobs=2, progress=False)


def test_local_tagging_study_end_to_end(finished_tagging_study: tuple[Path, dict[str, Any]]) -> None:
    from hepscale.tasks.tagging.data import INFO_FILE, read_info

    path, out = finished_tagging_study
    folder = Path(out["study_dir"])
    assert out["done"] == 4 and not out["failed"] and not out["interrupted"] and not out["fits_failed"]
    study = load_study(path)
    runs = expand_runs(study)
    table = pd.read_parquet(folder / "runs.parquet")
    assert sorted(table["run_id"]) == sorted(r.run_id for r in runs)  # one row per run
    assert sorted(zip(table["model"], table["features"])) == [("Nano", "kin"), ("Nano", "kinpid"), ("Pico", "kin"),
                                                              ("Pico", "kinpid")]
    info = read_info(folder / data_paths(study)["tagging"])
    assert info["classes"] == ["QCD", "Tbqq"] and INFO_FILE == "info.json"
    n_train = sum(info["counts"]["train"].values())
    assert (table["data_unit"] == "jets").all() and (table["max_particles"] == 16).all()
    assert (table["tokens_seen"] == 64).all() and (table["unique_tokens"] == n_train).all()
    assert table["epochs"].to_numpy() == pytest.approx(64 / n_train)
    assert (table["n_test"] == sum(info["counts"]["test"].values())).all()
    for col in ("auc", "rejection_50", "test_loss", "final_val_loss"):
        assert table[col].notna().all(), col
    # the evaluation drew each run's ROC with the study's settings, and agrees with the trainer's AUC
    assert (table["evaluation.kind"] == "tagging").all() and (table["evaluation.n_bootstraps"] == 3).all()
    assert table["evaluation.auc"].to_numpy() == pytest.approx(table["auc"].to_numpy())
    for run_dir in table["run_dir"]:
        assert (folder / run_dir / "evaluation" / "roc.png").stat().st_size > 0
    summary = (folder / "summary.txt").read_text()
    for _, row in table.iterrows():
        line = next(x for x in summary.splitlines() if x.startswith(f"{row['model']:<5} {row['features']:<8} "))
        assert f"{row['final_val_loss']:.4f}" in line and f"{row['test_loss']:.4f}" in line
        assert f"{row['auc']:.4f}" in line and f"{row['rejection_50']:.4g} +- " in line
    figures = {Path(f).name for f in out["figures"]}
    assert {f"loss_vs_{x}_{fs}.{s}" for x in "DC" for fs in ("kin", "kinpid") for s in ("pdf", "png")} <= figures
    assert {"rejection_vs_loss.pdf", "rejection_vs_loss.png"} <= figures
    fit = json.loads((folder / "fits" / "rejection_vs_loss.json").read_text())
    assert fit["law"] == "proxy" and fit["inputs"]["n_rows"] == 4
    # the plan, once the data exists, counts U from the training split as the trainer did
    rows = {r.run_id: r for r in plan_rows(study, runs, study_dir=folder)}
    for _, row in table.iterrows():
        planned = rows[row["run_id"]]
        assert planned.unique_tokens == row["unique_tokens"] and planned.tokens == row["tokens_seen"]
        assert planned.n_params == row["n_params_non_embedding"] and planned.flops == pytest.approx(row["flops"])


def test_rerun_of_a_finished_tagging_study_does_nothing(finished_tagging_study: tuple[Path, dict[str, Any]]) -> None:
    from hepscale.study import run_study

    path, first = finished_tagging_study
    folder = Path(first["study_dir"])
    logs = sorted(folder.glob("runs/*/*.log"))
    stamps = {p: p.stat().st_mtime_ns for p in logs}
    assert {p.stem for p in logs} == {"train", "evaluate"}
    again = run_study(path, jobs=2, progress=False, fits=False)
    assert again["done"] == 4 and not again["failed"]
    assert {p: p.stat().st_mtime_ns for p in logs} == stamps  # neither trained nor evaluated again
    tagging = folder / data_paths(load_study(path))["tagging"]
    assert json.loads((tagging / ".hepscale-stamp.json").read_text())["key"] == data_keys(load_study(path))["tagging"]


def test_quickstart_tagging_study_is_the_cpu_study() -> None:
    from hepscale.quickstart import QUICKSTART_STUDIES
    from hepscale.resources import project_file

    study = load_study(project_file(QUICKSTART_STUDIES["tagging"]))
    assert study.task == "tagging" and study.data.generate is not None
    assert "full" not in (study.grid.features or []) and QUICKSTART_STUDIES["generation"].name.startswith("generation")


def test_fits_repeated_per_grid_axis(tmp_path: Path, tagging_jets: Path) -> None:
    """``per: [features, model]`` gives one fit per combination of the grid's values, filtered to its runs."""
    from hepscale.study import job_commands

    data = tagging_dict(tmp_path / "out", tagging_jets)
    data["fit"]["fits"] = [{"name": "loss_vs_D", "law": "power-offset", "x": "D", "per": ["features", "model"],
                            "args": ["--filter", "max_particles==16"]}]
    study = load_study(write_study(tmp_path / "s.yaml", data))
    names = [f.name for f in study.fit.fits]
    assert names == ["loss_vs_D_kin_Pico", "loss_vs_D_kin_Nano", "loss_vs_D_kinpid_Pico", "loss_vs_D_kinpid_Nano"]
    assert study.fit.fits[2].options["filters"] == ["max_particles==16", "features==kinpid", "model==Pico"]
    fit = dict(job_commands(study, expand_runs(study))["fit"])["loss_vs_D_kinpid_Nano"]
    assert fit[-4:] == ["--filter", "features==kinpid", "--filter", "model==Nano"]
    assert fit[fit.index("--label") + 1] == "Simulation"  # an existing jet dataset, not generated
    for per, message in ([["seed"], "'seed' is not a grid axis"], [["model", "model"], "listed twice"]):
        data["fit"]["fits"][0]["per"] = per
        with pytest.raises(ConfigError, match=r"fit\.fits\[0\]\.per: .*" + message):
            load_study(write_study(tmp_path / "t.yaml", data))
    data["fit"]["fits"][0]["per"] = ["max_particles"]
    data["grid"].pop("max_particles")
    with pytest.raises(ConfigError, match=r"fit\.fits\[0\]\.per: grid\.max_particles lists no values"):
        load_study(write_study(tmp_path / "u.yaml", data))


# ---------------------------------------------------------------------------- L(D) fitted at the end of a study
@pytest.fixture(scope="module")
def fitted_tagging_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Six unique-jet budgets of one tagger (two epochs each), L(D) fitted at the end."""
    from hepscale.study import run_study

    base = tmp_path_factory.mktemp("fitted_tagging_study")
    jets = base / "jets.parquet"
    write_jets(jets, labelled_jets(500, seed=7))
    data = tagging_dict(base / "out", jets)
    data["grid"] = {"models": ["Pico"], "lr": {"Pico": 3.0e-3}, "features": ["kin"], "max_particles": [16],
                    "unique_jets": [25, 50, 100, 200, 400, 600], "epochs": [2]}
    data["evaluation"] = {"enabled": False}
    data["fit"] = {"n_bootstrap": 50, "fits": [{"name": "loss_vs_D", "law": "power-offset", "x": "D",
                                                "per": ["features", "model"]}]}
    path = write_study(base / "s.yaml", data)
    return path, run_study(path, jobs=2, progress=False)


def test_study_fits_beta_with_an_interval_and_l_inf_below_the_losses(
        fitted_tagging_study: tuple[Path, dict[str, Any]]) -> None:
    from hepscale.tasks.tagging.results import loss_fits

    _, out = fitted_tagging_study
    folder = Path(out["study_dir"])
    assert out["done"] == 6 and not out["failed"] and not out["fits_failed"] and not out["fits_skipped"]
    table = pd.read_parquet(folder / "runs.parquet")
    assert sorted(table["unique_tokens"]) == [25, 50, 100, 200, 400, 600]
    fit = json.loads((folder / "fits" / "loss_vs_D_kin_Pico.json").read_text())
    assert fit["inputs"]["n_rows"] == 6 and fit["inputs"]["columns"] == {"x": "tokens_seen", "y": "final_val_loss"}
    beta, (lo, hi) = fit["params"]["alpha"], fit["ci"]["alpha"]
    assert 0 < beta and math.isfinite(lo) and math.isfinite(hi) and lo < hi
    assert fit["bootstrap"]["n_resamples"] == 50
    assert fit["params"]["y_inf"] < table["final_val_loss"].min()  # L_inf below every measured loss
    # the study's figures draw it: the fitted curve on loss vs D, L_inf per feature set
    (record,) = loss_fits(folder / "fits")
    assert (record["features"], record["model"], record["max_particles"]) == ("kin", "Pico", None)
    assert record["params"]["y_inf"] == fit["params"]["y_inf"]
    figures = {Path(f).name for f in out["figures"]}
    assert {"loss_vs_D_kin.png", "linf_per_features.png", "linf_per_features.pdf"} <= figures
