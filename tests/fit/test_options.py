"""FitOptions: flags -> options -> flags, the checks naming the field, and what each law declares."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from hepscale.fit import (
    ANALYSES,
    REGISTRY,
    FitOptions,
    analyse,
    default_columns,
    min_runs,
    options_from_args,
    options_to_args,
    required_columns,
)


def _every_field_changed() -> FitOptions:
    columns = {role: f"col_{role}" for role in default_columns()}
    return FitOptions(law="frontier", x="C", columns=columns, filters=["model==M", "epochs<1.5"], y_scale="linear",
                      delta=0.02, n_bootstrap=17, bootstrap_starts=0, seed=5, level=0.68, n_jobs=3, grid="epoch",
                      budgets=[1e15, 3.5e16], budget_rtol=0.1, frontier_law="log", window_frac=0.25, window_z=3.5,
                      data_unit="jets", progress=True, label="Pythia 8")


def test_every_field_differs_from_its_default() -> None:
    changed, default = _every_field_changed(), FitOptions()
    same = [f.name for f in dataclasses.fields(FitOptions) if getattr(changed, f.name) == getattr(default, f.name)]
    assert same == []


@pytest.mark.parametrize("options", [FitOptions(), FitOptions(law="window", x="D"), _every_field_changed(),
                                     FitOptions(law="proxy", columns={"metric": "rejection_50"}, progress=False)],
                         ids=["defaults", "window", "every-field", "proxy"])
def test_options_to_args_and_back(options: FitOptions) -> None:
    args = options_to_args(options)
    assert all(isinstance(a, str) for a in args) and args[:2] == ["--law", options.law]
    assert options_from_args(args) == options
    # the whole command line of the tool reads back the same
    assert options_from_args(["runs.csv", *args, "--output", "x.json", "--format", "none"], command=True) == options


def test_options_to_args_writes_only_what_differs_unless_asked() -> None:
    assert options_to_args(FitOptions(progress=True)) == ["--law", "chinchilla"]
    assert options_to_args(FitOptions(law="log", x="N", progress=True)) == ["--law", "log"]
    assert options_to_args(FitOptions(law="window", x="N", progress=True)) == ["--law", "window", "--x", "N"]
    args = options_to_args(FitOptions(progress=True), always=("seed", "label"))
    assert args == ["--law", "chinchilla", "--seed", "0", "--label", "Simulation"]
    assert options_to_args(FitOptions(filters=["a==1"])) == ["--law", "chinchilla", "--no-progress", "--filter", "a==1"]


def test_options_from_args_reads_the_tool_flags() -> None:
    options = options_from_args(["--law", "power-offset", "--x", "D", "--d-col", "unique_tokens", "--filter", "model==M",
                                 "--cms-label", "Work", "--jobs", "0", "--confidence", "0.9", "--no-progress"])
    assert (options.law, options.x, options.columns["D"], options.filters) == ("power-offset", "D", "unique_tokens",
                                                                               ["model==M"])
    assert options.columns["N"] == default_columns()["N"]  # the other roles keep their columns
    assert (options.label, options.n_jobs, options.level, options.progress) == ("Work", 1, 0.9, False)
    assert options_from_args(["--law", "window"]).x == "D"


@pytest.mark.parametrize(("args", "message"), [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--output", "x.json"], "unrecognized arguments: --output x.json"),  # not an option of the fit
    (["runs.csv"], "unrecognized arguments: runs.csv"),
    (["--n-bootstrap"], "argument --n-bootstrap: expected one argument"),
    (["--confidence", "1.5"], "argument --confidence: expected a confidence level"),
    (["--law", "cubic"], "argument --law: invalid choice: 'cubic'"),
    (["--help"], "asks for help"),
])
def test_options_from_args_raises_the_parser_message(args: list[str], message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=message):
        options_from_args(args)
    assert capsys.readouterr() == ("", "")  # nothing printed, nothing exited


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"law": "cubic"}, "law", "expected one of"),
    ({"x": "Q"}, "x", "expected one of"),
    ({"columns": {"Z": "z"}}, "columns", "unknown role"),
    ({"filters": ["model ~ M"]}, "filters", ""),
    ({"level": 1.0}, "level", "confidence level"),
    ({"frontier_law": "chinchilla"}, "frontier_law", "single-variable law"),
    ({"window_frac": 2.0}, "window_frac", "fraction"),
])
def test_wrong_options_name_their_field(change: dict, field: str, message: str) -> None:
    options = dataclasses.replace(FitOptions(), **change)
    assert list(options.errors()) == [field] and message in options.errors()[field]
    table = pd.DataFrame({"N": [1e4, 1e5, 1e6], "loss": [3.0, 2.8, 2.6]})
    with pytest.raises(ValueError, match=f"^{field}: "):
        analyse(table, options)
    with pytest.raises(ValueError, match=f"^{field}: "):
        options_to_args(options)


def test_each_law_declares_its_columns_and_fewest_runs() -> None:
    assert set(REGISTRY) == set(ANALYSES)
    cols = default_columns()
    assert required_columns(FitOptions(law="chinchilla")) == [cols["N"], cols["D"], cols["y"]]
    assert required_columns(FitOptions(law="log", x="D")) == [cols["D"], cols["y"]]
    assert required_columns(FitOptions(law="window", x="C")) == [cols["C"], cols["positions"]]
    assert required_columns(FitOptions(law="proxy", columns={"metric": "m"})) == [cols["y"], "m"]
    # a fitted formula needs one run per parameter; the frontier those of its law
    assert min_runs(FitOptions(law="chinchilla")) == 5 and min_runs(FitOptions(law="log")) == 2
    assert min_runs(FitOptions(law="frontier", frontier_law="power-offset")) == 3
    assert (min_runs(FitOptions(law="proxy")), min_runs(FitOptions(law="window")),
            min_runs(FitOptions(law="isoflop"))) == (3, 4, 6)


def test_analyse_applies_the_filters() -> None:
    table = pd.DataFrame({"N": [1e4, 1e5, 1e6, 1e7, 1e8], "loss": [3.0, 2.8, 2.6, 2.4, 9.0],
                          "model": ["a", "b", "c", "d", "broken"]})
    out = analyse(table, FitOptions(law="log", columns={"y": "loss", "N": "N"}, filters=["model!=broken"],
                                    n_bootstrap=0))
    assert out.result["inputs"]["n_rows"] == 4 and out.result["params"]["b"] == pytest.approx(0.2 / 2.302585, rel=1e-3)
