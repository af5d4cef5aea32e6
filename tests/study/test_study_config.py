from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from _study_setup import (
    MODELS_YAML,
    ROOT,
    STUDIES,
    TAGGERS_YAML,
    _nested_set,
    tiny_dict,
    write_study,
)

from hepscale.config import ConfigError
from hepscale.models.sizes import model_sizes
from hepscale.study import data_paths, expand_runs, load_study, plan_rows
from hepscale.train.config import load_run_config, run_id


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_shipped_studies_load_and_expand(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # relative paths of shipped studies are relative to the repository root
    study = load_study(path)
    runs = expand_runs(study)
    assert runs and len({r.run_id for r in runs}) == len(runs)
    for r in runs[:3]:
        cfg = load_run_config(study.train.config, r.overrides)
        assert run_id(cfg) == r.run_id
        assert cfg.model.size == r.model and cfg.optim.lr == study.grid.lr[r.model]
        if study.task == "tagging":
            assert cfg.task == "tagging" and cfg.data.dataset == data_paths(study)["tagging"]
        else:
            assert cfg.data.tokens == data_paths(study)["tokens"]
    assert set(study.grid.lr) == set(study.grid.models)  # a learning rate per size
    rows = plan_rows(study, runs, study_dir=Path("/nonexistent"))
    for row, run in zip(rows, runs):
        B = run.config.data.batch_size
        if study.task == "tagging":  # the tagger's own FLOPs per jet; N from the size table
            assert row.tokens == B * row.steps and row.flops > 0
            assert row.n_params == TAGGERS_YAML[run.model]["n_params_non_embedding"] + (
                len(study.data.tagging.classes) - 2) * (TAGGERS_YAML[run.model]["d_model"] + 1)
            continue
        S = run.config.data.seq_len
        # C = 6 N_incl B S steps (the study's definition), the non-embedding count beside it
        assert row.flops == pytest.approx(6 * row.n_params_total * B * S * row.steps) == row.flops_total
        assert row.n_params == MODELS_YAML[run.model]["n_params_non_embedding"] < row.n_params_total
    if study.grid.flops is not None:  # isoFLOP: five budgets spaced evenly in log C
        logs = np.diff(np.log10(study.grid.flops))
        assert len(study.grid.flops) == 5 and np.allclose(logs, logs[0], rtol=1e-3)
        assert len(runs) == 5 * len(study.grid.models)
    if path.stem.startswith("generation_phase1"):
        n = [MODELS_YAML[m]["n_params_non_embedding"] for m in study.grid.models]
        assert len(n) >= 4 and math.log10(max(n) / min(n)) >= 1.5
        if path.stem == "generation_phase1":
            assert study.grid.models == list(model_sizes())


#: the per-size learning rates of the generation study's recipe (Ranger)
RECIPE_LR = {"Pico": 1e-2, "XXS": 5e-3, "XS": 5e-3, "S": 3e-3, "M-": 3e-3, "M": 3e-3, "L": 1e-3, "XL": 1e-3,
             "XXL": 3e-4}
#: the CPU studies' rates, scanned at their 4e5-token budget (generation_phase1_cpu.yaml)
CPU_LR = {"Pico": 1e-2, "XXS": 1e-2, "XS": 1e-2, "S": 1e-2, "M-": 6e-3, "M": 3e-3}
GENERATION = [p for p in STUDIES if p.stem.startswith("generation_")]


@pytest.mark.parametrize("path", GENERATION, ids=[p.stem for p in GENERATION])
def test_generation_studies_follow_the_recipe(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    study = load_study(path)
    runs = expand_runs(study)
    for run in runs:
        assert run.config.optim.name == "ranger", run.run_id
        lr = CPU_LR if path.stem.endswith("_cpu") else RECIPE_LR
        assert run.config.optim.lr == lr[run.model], run.model
    n = {m: MODELS_YAML[m]["n_params_non_embedding"] for m in study.grid.models}
    if path.stem == "generation_phase1":  # nine sizes, 3.5 decades, about 1e4 to 1e8
        assert len(n) == 9 and 1e4 <= min(n.values()) and max(n.values()) <= 1e8
        assert math.log10(max(n.values()) / min(n.values())) == pytest.approx(3.5, abs=0.05)
    if all(r.config.data.unique_tokens for r in runs):  # phase 2: ~196 passes over the smallest set, < 1 over the largest
        passes = sorted(r.config.budget.tokens / r.config.data.unique_tokens for r in runs)
        assert passes[-1] == pytest.approx(196, rel=0.02) and passes[0] < 1
        U = sorted({r.config.data.unique_tokens for r in runs})
        if path.stem == "generation_phase2":
            assert (U[0], U[-1]) == (6_400_000, 8_100_000_000)
        assert np.allclose(np.diff(np.log(U[:-1])), math.log(4))  # a factor 4 apart
    if study.grid.flops is not None:  # phase 3: five budgets over one decade
        assert math.log10(max(study.grid.flops) / min(study.grid.flops)) == pytest.approx(1.0, abs=1e-4)


def test_phase2_cpu_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    study = load_study(ROOT / "configs/studies/generation_phase2_cpu.yaml")
    pairs = sorted((r.config.data.unique_tokens, r.config.budget.tokens) for r in expand_runs(study))
    assert pairs == [(U, 196000) for U in (1000, 4000, 16000, 64000, 256000)]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("grid.modelz", ["Pico"], "unknown key.*'modelz'"),
    ("grid.models", ["Huge"], r"grid\.models\[0\].*'Huge'"),
    ("grid.tokens", [1000], "exactly one of grid.steps, grid.tokens"),
    ("grid.lr", {"M": 1e-3}, r"grid\.lr\.M"),
    ("grid.steps", [0], r"grid\.steps.*positive"),
    ("data.events", "x.root", r"data\.events.*expected a list"),
    ("data.generate", {"processes": ["ttbar"]}, "exactly one of data.generate, data.events, data.jets"),
    ("data.tokenizer", {"n_pt": 0}, r"data\.tokenizer.*n_pt"),
    ("evaluation.samples", 10, r"evaluation\.samples.*evaluation\.n"),
    ("fit.fits", [{"name": "a", "law": "cubic"}], r"fit\.fits\[0\]\.law"),
    ("name", "", "name"),
])
def test_invalid_study_names_the_field(tmp_path: Path, jets_file: Path, key: str, value: Any, message: str) -> None:
    path = write_study(tmp_path / "s.yaml", _nested_set(tiny_dict(tmp_path / "out", jets_file), key, value))
    with pytest.raises(ConfigError, match=message) as err:
        load_study(path)
    if key != "grid.modelz":
        assert "s.yaml" in str(err.value)  # the file is named too


def test_epochs_grid_and_run_ids(tmp_path: Path, jets_file: Path) -> None:
    data = tiny_dict(tmp_path / "out", jets_file)
    data["grid"] = {"models": ["Pico"], "unique_tokens": [1000, 5000], "epochs": [1, 4], "max_tokens": 10000,
                    "seeds": [7]}
    study = load_study(write_study(tmp_path / "s.yaml", data))
    runs = expand_runs(study)
    assert sorted((r.config.data.unique_tokens, r.config.budget.tokens) for r in runs) == [
        (1000, 1000), (1000, 4000), (5000, 5000)]
    assert all(r.config.seed == 7 and r.config.budget.steps is None for r in runs)
    assert [r.run_id for r in runs] == [r.run_id for r in expand_runs(load_study(tmp_path / "s.yaml"))]
    data["grid"]["max_tokens"] = 10
    with pytest.raises(ConfigError, match="grid.max_tokens=10 leaves no run"):
        expand_runs(load_study(write_study(tmp_path / "u.yaml", data)))
    data["grid"]["max_tokens"] = 10000
    # the data settings are part of the run: another binning gives other run ids
    data["data"]["tokenizer"]["n_pt"] = 9
    other = expand_runs(load_study(write_study(tmp_path / "t.yaml", data)))
    assert not {r.run_id for r in runs} & {r.run_id for r in other}


@pytest.mark.parametrize(("key", "value", "message"), [
    ("data.tokenizer", {"n_ptt": 8}, r"data\.tokenizer: unknown key\(s\) 'n_ptt'; valid keys are: .*\bn_pt\b"),
    ("data.tokenizer", {"n_pt": "many"}, r"s\.yaml: data\.tokenizer\.n_pt: expected .*'many'"),
    ("train.overrides", ["optim.lrr=1e-3"], r"s\.yaml: train: .*unknown key 'optim\.lrr'; valid keys are: .*\blr\b"),
    ("train.overrides", ["data.seq_len=0"], r"s\.yaml: train: .*data\.seq_len must be at least 1"),
    ("train.config", "/nonexistent/train.yaml", r"s\.yaml: train\.config: /nonexistent/train\.yaml does not exist"),
    ("grid.model_overrides", {"Pico": ["data.batch_size=0"]},
     r"s\.yaml: grid\.model_overrides\.Pico: .*data\.batch_size must be at least 1"),
])
def test_study_inputs_are_checked_on_load(tmp_path: Path, jets_file: Path, key: str, value: Any, message: str) -> None:
    path = write_study(tmp_path / "s.yaml", _nested_set(tiny_dict(tmp_path / "out", jets_file), key, value))
    with pytest.raises(ConfigError, match=message):
        load_study(path)


@pytest.mark.parametrize(("settings", "message"), [
    ({"radius": -0.8}, r"s\.yaml: data\.process\.config: .*radius must be positive"),
    ({"radiuss": 0.8}, r"s\.yaml: data\.process\.config: .*unknown key\(s\) 'radiuss'; valid keys are: .*\bradius\b"),
])
def test_processor_config_is_checked_on_load(tmp_path: Path, settings: dict[str, Any], message: str) -> None:
    config = tmp_path / "process.yaml"
    config.write_text(yaml.safe_dump(settings))
    data = tiny_dict(tmp_path / "out", Path("unused"))
    data["data"] = {"events": [str(tmp_path / "events.root")], "process": {"config": str(config)}}
    with pytest.raises(ConfigError, match=message):
        load_study(write_study(tmp_path / "s.yaml", data))
    data["data"] = {"jets": str(tmp_path / "jets.parquet"), "process": {"config": str(config)}}
    load_study(write_study(tmp_path / "t.yaml", data))  # not processed, not read


def test_relative_inputs_are_found_from_the_working_directory_or_beside_the_study(
    tmp_path: Path, jets_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tiny_dict(tmp_path / "out", jets_file)
    (tmp_path / "train.yaml").write_text((ROOT / "configs" / "train" / "quick_cpu.yaml").read_text())
    data["train"]["config"] = "train.yaml"
    data["train"]["overrides"].append("optim.lrr=1")
    path = write_study(tmp_path / "s.yaml", data)
    monkeypatch.chdir(ROOT)
    with pytest.raises(ConfigError, match=r"s\.yaml: train: .*optim\.lrr"):  # train.yaml beside the study
        load_study(path)
    data["train"]["overrides"].pop()
    data["train"]["config"] = "nowhere/train.yaml"  # found neither here nor there: checked where it is used
    study = load_study(write_study(tmp_path / "u.yaml", data))
    with pytest.raises(ConfigError, match=r"run Pico / steps=8: config file nowhere/train\.yaml does not exist"):
        expand_runs(study)


@pytest.mark.parametrize(("args", "message"), [
    (["--bogus"], r"unrecognized arguments: --bogus"),
    (["--huber-delta", "abc"], r"argument --huber-delta: invalid .* value: 'abc'"),
    (["--n-bootstrap"], r"argument --n-bootstrap: expected one argument"),
    (["--output", "elsewhere.json"], r"unrecognized arguments: --output elsewhere\.json"),
    (["--law", "power"], r"they set --law, which the study sets itself"),
    (["--help"], r"asks for help"),
])
def test_fit_args_are_checked_on_load(tmp_path: Path, jets_file: Path, capsys: pytest.CaptureFixture[str],
                                      args: list[str], message: str) -> None:
    """A fit the fit tool cannot read is an error of the plan, not of the study's last step."""
    from hepscale.study import main

    data = tiny_dict(tmp_path / "out", jets_file)
    data["fit"]["fits"] = [{"name": "loss_vs_N", "law": "log", "x": "N", "args": ["--cms-label", "Work"]},
                           {"name": "second", "law": "log", "x": "N", "args": args}]
    path = write_study(tmp_path / "s.yaml", data)
    with pytest.raises(ConfigError, match=r"s\.yaml: fit\.fits\[1\]\.args: 'hepscale fit' cannot take .*" + message):
        load_study(path)
    capsys.readouterr()
    assert main(["plan", str(path)]) == 2  # before anything runs
    captured = capsys.readouterr()
    assert "fit.fits[1].args" in captured.err and "usage" not in captured.err + captured.out
    data["fit"]["fits"].pop()
    load_study(write_study(tmp_path / "t.yaml", data))  # the fit tool's own options are fine


@pytest.mark.parametrize(("options", "where", "message"), [
    ({"bogus": 1}, "bogus", r"not an option of a fit; options are \[.*'columns'"),
    ({"n_bootstrap": "many"}, "n_bootstrap", r"expected an integer, got 'many'"),
    ({"columns": {"D": 3}}, r"columns\.D", r"expected .*str"),
    ({"columns": {"Z": "z"}}, "columns", r"unknown role\(s\) \['Z'\]"),
    ({"level": 2}, "level", r"expected a confidence level in \(0, 1\), got 2"),
    ({"filters": ["model ~ M"]}, "filters", r""),
    ({"law": "power"}, "law", r"set by fit\.fits\[i\]\.law"),
    ({"progress": True}, "progress", r"set by the study"),
])
def test_fit_options_are_checked_on_load(tmp_path: Path, jets_file: Path, capsys: pytest.CaptureFixture[str],
                                         options: dict[str, Any], where: str, message: str) -> None:
    """A wrong fit option is an error of the plan (exit status 2) that names fit.fits[i].options.<key>."""
    from hepscale.study import main

    data = tiny_dict(tmp_path / "out", jets_file)
    data["fit"]["fits"] = [{"name": "loss_vs_N", "law": "log", "x": "N", "options": {"label": "Work"}},
                           {"name": "second", "law": "log", "x": "N", "options": options}]
    path = write_study(tmp_path / "s.yaml", data)
    with pytest.raises(ConfigError, match=r"s\.yaml: fit\.fits\[1\]\.options\." + where + ": " + message):
        load_study(path)
    capsys.readouterr()
    assert main(["plan", str(path)]) == 2
    assert "fit.fits[1].options." in capsys.readouterr().err


def test_fit_args_and_options_give_the_same_fit(tmp_path: Path, jets_file: Path) -> None:
    """The args of an older study file become the options they set: the same options, the same job."""
    from hepscale.fit import FitOptions, options_from_args
    from hepscale.study import job_commands
    from hepscale.study.fits import fit_options

    data = tiny_dict(tmp_path / "out", jets_file)
    data["fit"]["fits"] = [{"name": "u", "law": "power-offset", "x": "D", "per": ["model"],
                            "args": ["--d-col", "unique_tokens", "--filter", "seed==0", "--cms-label", "Work",
                                     "--n-bootstrap", "7"]}]
    old = load_study(write_study(tmp_path / "old.yaml", data))
    data["fit"]["fits"][0].pop("args")
    data["fit"]["fits"][0]["options"] = {"columns": {"D": "unique_tokens"}, "filters": ["seed==0"], "label": "Work",
                                         "n_bootstrap": 7}
    new = load_study(write_study(tmp_path / "new.yaml", data))
    assert [f.args for f in old.fit.fits] == [[], []]  # converted once, when loaded; one fit per model
    spec = new.fit.fits[0]
    options = fit_options(new, spec)
    assert options == fit_options(old, old.fit.fits[0])
    assert isinstance(options, FitOptions) and options.law == "power-offset" and options.x == "D"
    assert options.columns["D"] == "unique_tokens" and options.filters == ["seed==0", f"model=={new.grid.models[0]}"]
    assert (options.n_bootstrap, options.seed, options.label, options.progress) == (7, 0, "Work", False)
    (name, command), _ = job_commands(new, [])["fit"]
    assert job_commands(old, [])["fit"] == job_commands(new, [])["fit"] and command.options == options
    assert command[:6] == ["fit", "runs.parquet", "--output", f"fits/{name}.json", "--format", "none"]
    assert options_from_args(command[6:]) == options  # the job runs exactly these options
    data["fit"]["fits"][0]["args"] = ["--seed", "3", "--n-bootstrap", "9"]  # set twice: refused
    with pytest.raises(ConfigError, match=r"fit\.fits\[0\]\.options\.n_bootstrap: also set by fit\.fits\[0\]\.args"):
        load_study(write_study(tmp_path / "both.yaml", data))


def test_fit_skipped_by_the_fewest_runs_its_law_declares(tmp_path: Path, jets_file: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The finish step skips a fit by the minimum and the columns that its law declares in the fit package."""
    import pandas as pd

    from hepscale.fit import REGISTRY, default_columns
    from hepscale.study.fits import fit_options, fit_shortfall, min_runs, usable_runs

    data = tiny_dict(tmp_path / "out", jets_file)
    data["fit"]["fits"] = [{"name": "a", "law": "log", "x": "N", "options": {"filters": ["model!=broken"]}},
                           {"name": "b", "law": "proxy", "options": {"columns": {"metric": "rejection_50"}}}]
    study = load_study(write_study(tmp_path / "s.yaml", data))
    log, proxy = (fit_options(study, f) for f in study.fit.fits)
    cols = default_columns()
    table = pd.DataFrame({cols["N"]: [1e4, 1e5, 1e6, 1e7], cols["y"]: [3.0, 2.9, np.nan, 2.5],
                          "model": ["a", "b", "c", "broken"], "rejection_50": [1.0, 2.0, 3.0, 4.0]})
    assert (min_runs(log), usable_runs(table, log)) == (2, 2)  # filtered out, and a row without a loss
    assert fit_shortfall(log, table) is None
    assert (min_runs(proxy), usable_runs(table, proxy)) == (3, 3) and fit_shortfall(proxy, table) is None
    monkeypatch.setitem(REGISTRY, "log", dataclasses.replace(REGISTRY["log"], min_runs=3))
    assert fit_shortfall(log, table) == "2 run(s) in the runs table, law 'log' needs at least 3"
    monkeypatch.setitem(REGISTRY, "proxy", dataclasses.replace(REGISTRY["proxy"], roles=("y", "metric", "U")))
    assert usable_runs(table, proxy) is None  # a declared column the table lacks: the fit itself tells
    assert fit_shortfall(proxy, table) is None


def test_help_override_example_plans_the_shipped_study(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The override example of ``study plan --help``, verbatim, on the shipped CPU study."""
    import re

    from hepscale.study import main
    from hepscale.study.cli import _parser

    monkeypatch.chdir(ROOT)
    help_text = " ".join(_parser("plan").format_help().split())
    example = re.search(r"e\.g\. (\S+)", help_text)
    assert example is not None, help_text
    override = example.group(1)
    assert override == "grid.models=[Pico]"
    shipped = "configs/studies/generation_phase1_cpu.yaml"
    assert set(load_study(shipped).grid.lr) == {"Pico", "XXS", "XS", "S", "M-", "M"}  # a table wider than the override
    capsys.readouterr()
    assert main(["plan", shipped, override]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "1 runs" in out and " Pico " in out and " XXS " not in out
    (run,) = expand_runs(load_study(shipped, [override]))
    assert run.model == "Pico" and run.config.optim.lr == 1.0e-2  # its own learning rate
    # a size of the grid without a learning rate, beside one that is not in the grid: still an error
    with pytest.raises(ConfigError, match=r"grid\.lr\.XXS: 'XXS' is not one of grid\.models \['Pico', 'L'\].*L of"):
        load_study(shipped, ["grid.models=[Pico,L]"])
    with pytest.raises(ConfigError, match=r"grid\.lr\.Huge: 'Huge' is not a size of models\.yaml"):
        load_study(shipped, ["grid.lr.Huge=1e-3"])
