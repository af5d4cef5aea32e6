"""Tests of hepscale.runs.table: gathering result.json files into a runs table, reading tables, filters."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hepscale.runs.cli import main
from hepscale.runs.table import (
    REQUIRED_KEYS,
    apply_filters,
    flatten,
    gather_runs,
    parse_filter,
    read_runs_table,
)


def record(i: int, **extra) -> dict:
    base = {"run_id": f"r{i}", "model": ["Pico", "XS", "M"][i % 3], "n_params_non_embedding": 1e4 * 10**i,
            "n_params_total": 2e4 * 10**i, "tokens_seen": 1e6 * (i + 1), "unique_tokens": 1e6, "epochs": i + 1.0,
            "flops": 6e10 * 10**i * (i + 1), "final_val_loss": 3.0 - 0.1 * i}
    base.update(extra)
    return base


def write(path: Path, obj) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "result.json").write_text(json.dumps(obj))


@pytest.fixture
def study(tmp_path: Path) -> Path:
    root = tmp_path / "study"
    write(root / "phase1" / "a" / "run0", record(0, evaluation={"swd": {"mean": 0.5, "std": 0.1}, "floor": 0.01}))
    write(root / "phase1" / "run1", record(1, val_loss_per_position=[3.1, 2.9, 2.8]))
    write(root / "run2", record(2))
    (root / "unfinished").mkdir()
    (root / "unfinished" / "metrics.jsonl").write_text("{}\n")
    return root


def test_flatten() -> None:
    assert flatten({"a": 1, "b": {"c": {"d": 2}, "e": [1, 2]}}) == {"a": 1, "b.c.d": 2, "b.e": [1, 2]}


def test_gather_runs_at_any_depth(study: Path) -> None:
    table = gather_runs(study)
    assert table["run_id"].tolist() == ["r0", "r1", "r2"]  # sorted by path, unfinished run skipped
    assert table["run_dir"].tolist() == ["phase1/a/run0", "phase1/run1", "run2"]
    assert table.loc[0, "evaluation.swd.mean"] == 0.5
    assert table.loc[0, "evaluation.floor"] == 0.01
    assert pd.isna(table.loc[1, "evaluation.swd.mean"])
    assert table.loc[1, "val_loss_per_position"] == [3.1, 2.9, 2.8]
    for key in REQUIRED_KEYS:
        assert key in table.columns


def test_missing_key_names_file_and_key(study: Path) -> None:
    bad = record(5)
    del bad["flops"]
    write(study / "bad", bad)
    with pytest.raises(ValueError, match=r"bad/result.json: missing required key\(s\) flops"):
        gather_runs(study)
    assert len(gather_runs(study, strict=False)) == 3


def test_invalid_json_and_empty_study(tmp_path: Path, study: Path) -> None:
    (study / "broken").mkdir()
    (study / "broken" / "result.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken/result.json: not valid JSON"):
        gather_runs(study)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no finished runs"):
        gather_runs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        gather_runs(tmp_path / "nowhere")


def test_read_runs_table_formats(study: Path, tmp_path: Path) -> None:
    table = gather_runs(study).drop(columns=["val_loss_per_position"])
    table.to_csv(tmp_path / "runs.csv", index=False)
    table.to_parquet(tmp_path / "runs.parquet", index=False)
    for path in (study, tmp_path / "runs.csv", tmp_path / "runs.parquet"):
        read = read_runs_table(path)
        assert read["final_val_loss"].tolist() == pytest.approx([3.0, 2.9, 2.8]), path
        assert read["evaluation.swd.mean"].iloc[0] == 0.5
    (tmp_path / "runs.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown format '.txt'"):
        read_runs_table(tmp_path / "runs.txt")


def test_filters(study: Path) -> None:
    table = gather_runs(study)
    assert apply_filters(table, ["epochs > 1"])["run_id"].tolist() == ["r1", "r2"]
    assert apply_filters(table, ["epochs>=2", "final_val_loss < 2.85"])["run_id"].tolist() == ["r2"]
    assert apply_filters(table, ["model == XS"])["run_id"].tolist() == ["r1"]
    assert apply_filters(table, ["model=Pico|M"])["run_id"].tolist() == ["r0", "r2"]
    assert apply_filters(table, ["model != Pico|M"])["run_id"].tolist() == ["r1"]
    assert apply_filters(table, ["n_params_non_embedding == 1e5"])["run_id"].tolist() == ["r1"]
    assert parse_filter("evaluation.swd.mean <= 0.3") == ("evaluation.swd.mean", "<=", 0.3)
    with pytest.raises(KeyError, match="no column 'size'"):
        apply_filters(table, ["size == 3"])
    with pytest.raises(ValueError, match="expected 'COLUMN OP VALUE'"):
        parse_filter("epochs")
    with pytest.raises(ValueError, match="needs a number"):
        parse_filter("epochs > many")


def test_main_writes_table(study: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "runs.csv"
    assert main([str(study), "--output", str(out), "--filter", "epochs <= 2"]) == 0
    assert pd.read_csv(out)["run_id"].tolist() == ["r0", "r1"]
    assert "2 runs" in capsys.readouterr().out
