"""The classification task on the one trainer: a tagger learns top vs QCD on generated jets,
resumes exactly, counts its own FLOPs, and its scores and ROC agree with result.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from _training import final_weights, metrics, without_timing

from hepscale.config import ConfigError, to_dict
from hepscale.errors import EXIT_BAD_INPUT, EXIT_CHECKPOINT
from hepscale.metrics.tagging import auc as roc_auc
from hepscale.train import train
from hepscale.train.config import load_run_config, run_id, run_task
from hepscale.tasks.tagging.config import TaggerTrainConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tagging_dir(processed_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Top (Tbqq) vs QCD jets of the generated ttbar and QCD samples, split by jet."""
    from hepscale.tasks.tagging.data import prepare_tagging_data

    out = tmp_path_factory.mktemp("tagging") / "data"
    return Path(prepare_tagging_data(processed_samples / "jets.parquet", out, classes=("QCD", "Tbqq"), seed=3))


def _cfg(dataset: Path, *overrides: str) -> TaggerTrainConfig:
    base = ROOT / "configs" / "train" / "tagger_cpu.yaml"
    cfg = load_run_config(base, [f"data.dataset={dataset}", "model.size=custom", "model.d_model=32",
                                 "model.n_head=4", "model.n_layer=2", "model.n_class_layer=1",
                                 "data.batch_size=32", "optim.warmup_steps=5", "budget.steps=12", "eval.every=4",
                                 "eval.jets=200", "eval.bootstraps=5", "checkpoint.every=5", *overrides])
    assert isinstance(cfg, TaggerTrainConfig)
    return cfg


def _result(run: Path) -> dict[str, Any]:
    return json.loads((run / "result.json").read_text())


def test_task_key_chooses_the_config(tmp_path: Path) -> None:
    gen = ROOT / "configs" / "train" / "quick_cpu.yaml"
    assert run_task(gen) == "generation" and run_task(ROOT / "configs" / "train" / "tagger_cpu.yaml") == "tagging"
    with pytest.raises(ConfigError, match=r"quick_cpu.yaml.data: unknown key\(s\) 'seq_len', 'tokens'"):
        load_run_config(gen, ["task=tagging"])  # a generation config read as a tagger's
    # the name of earlier versions reads as tagging, and a tagger's run id does not change with it
    legacy = tmp_path / "legacy.yaml"
    legacy.write_text((ROOT / "configs" / "train" / "tagger_cpu.yaml").read_text().replace("task: tagging",
                                                                                          "task: classification"))
    assert run_task(legacy) == "tagging"
    assert run_id(load_run_config(legacy)) == run_id(load_run_config(ROOT / "configs" / "train" / "tagger_cpu.yaml"))
    explicit = tmp_path / "g.yaml"
    explicit.write_text("task: generation\n" + gen.read_text())
    assert to_dict(load_run_config(explicit)) == to_dict(load_run_config(gen))
    with pytest.raises(ConfigError, match=r"task: expected one of \['generation', 'tagging'\], got 'regression'"):
        load_run_config(gen, ["task=regression"])
    with pytest.raises(ConfigError, match="budget: set exactly one of steps, jets, flops"):
        load_run_config(ROOT / "configs" / "train" / "tagger_cpu.yaml", ["budget.jets=1000"])


def test_tagger_learns_top_vs_qcd(tagging_dir: Path, tmp_path: Path) -> None:
    """A small tagger trained for seconds on generated top vs QCD jets reaches AUC >= 0.9 on the test split
    (the jet mass alone gives 0.92 on these jets)."""
    from hepscale.models.tagger_sizes import train_flops_per_jet
    from hepscale.tasks.tagging.data import read_info

    cfg = _cfg(tagging_dir, "budget.steps=400", "eval.every=100", "optim.lr=1e-3", "eval.bootstraps=20")
    run = tmp_path / "run"
    assert train(cfg, run, progress=False) == 0
    res = _result(run)
    assert res["auc"] >= 0.9, res["auc"]
    assert res["rejection_50"] is not None and res["rejection_50"] > 5
    assert res["test_metrics"]["Tbqq"]["auc"] == res["auc"]
    info = read_info(tagging_dir)
    assert res["n_test"] == sum(info["counts"]["test"].values())
    assert res["data_unit"] == "jets" and res["unique_jets"] == res["unique_tokens"]
    assert res["unique_tokens"] == sum(info["counts"]["train"].values())
    assert res["tokens_seen"] == 400 * 32 and res["epochs"] == pytest.approx(400 * 32 / res["unique_tokens"])
    task_cfg = _model_config(res)
    per_jet = train_flops_per_jet(task_cfg)
    assert res["flops_non_embedding"] == pytest.approx(per_jet[0] * 32 * 400)
    assert res["flops_total_params"] == pytest.approx(per_jet[1] * 32 * 400)
    assert res["flops_n"] == "total" and res["flops"] == res["flops_total_params"]  # C with every layer by default
    lines = metrics(run)
    assert [m["step"] for m in lines] == [100, 200, 300, 400]
    assert all(0.0 <= m["val_accuracy"] <= 1.0 for m in lines) and lines[-1]["val_loss"] < lines[0]["val_loss"]
    assert res["final_val_loss"] == lines[-1]["val_loss"]


def _model_config(res: dict[str, Any]) -> Any:
    from hepscale.models.tagger_sizes import TaggerConfig

    return TaggerConfig(**res["model_config"])


@pytest.mark.parametrize("extra", [(), ("model.pairwise=true", "optim.name=ranger", "optim.lookahead_k=3")])
def test_interrupted_and_resumed_tagger_is_exact(tagging_dir: Path, tmp_path: Path, extra: tuple[str, ...]) -> None:
    cfg = _cfg(tagging_dir, "data.unique_jets=96", *extra)
    assert train(cfg, tmp_path / "full", progress=False) == 0
    stopped = _cfg(tagging_dir, "data.unique_jets=96", "stop_after_steps=7", *extra)
    assert train(stopped, tmp_path / "part", progress=False) == EXIT_CHECKPOINT
    assert not (tmp_path / "part" / "result.json").exists()
    assert train(cfg, tmp_path / "part", resume=True, progress=False) == 0
    a, b = final_weights(tmp_path / "full"), final_weights(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert without_timing(metrics(tmp_path / "full")) == without_timing(metrics(tmp_path / "part"))
    ra, rb = _result(tmp_path / "full"), _result(tmp_path / "part")
    for key in ("final_val_loss", "tokens_seen", "unique_tokens", "epochs", "auc", "test_loss", "run_id", "flops"):
        assert ra[key] == rb[key], key
    assert ra["unique_tokens"] == 96 and ra["epochs"] == pytest.approx(12 * 32 / 96)


def test_scores_and_roc_agree_with_the_result(tagging_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from hepscale.cli import main
    from hepscale.tasks.tagging.data import load_split

    cfg = _cfg(tagging_dir, "budget.steps=30")
    run = tmp_path / "run"
    assert train(cfg, run, progress=False) == 0
    res = _result(run)
    test_jets = tmp_path / "test.parquet"
    import awkward as ak

    ak.to_parquet(load_split(tagging_dir, "test"), test_jets)
    assert main(["score", str(run), str(test_jets), "--output", str(tmp_path / "s.parquet"), "--no-progress"]) == 0
    scores = pd.read_parquet(tmp_path / "s.parquet")
    assert list(scores.columns[:2]) == ["QCD", "Tbqq"] and "label" in scores.columns
    np.testing.assert_allclose(scores["QCD"] + scores["Tbqq"], 1.0, rtol=1e-6)
    is_top = (scores["label"] == 8).to_numpy()  # JetClass-I label of Tbqq
    assert is_top.any() and (~is_top).any()
    # the same AUC up to the order of one pair of (nearly) equal scores: identical jets score exactly alike one
    # by one, but not always to the last bit inside a batch of other jets, so a tie may be counted differently
    one_pair = 1.0 / (int(is_top.sum()) * int((~is_top).sum()))
    assert roc_auc(scores["Tbqq"].to_numpy(), is_top.astype(int)) == pytest.approx(res["auc"], abs=one_pair)
    # the ROC of the test split, merged into result.json
    assert main(["evaluate", str(run), "--bootstraps", "5"]) == 0
    out = capsys.readouterr().out
    assert "Tbqq vs QCD" in out and "AUC" in out
    ev = _result(run)["evaluation"]
    assert ev["kind"] == "tagging" and ev["auc"] == pytest.approx(res["auc"], abs=1e-9)
    assert (run / "evaluation" / "roc.pdf").is_file() and (run / "evaluation" / "roc.png").is_file()
    # jets of a class the tagger never saw: an error naming them, unless asked
    wjets = tmp_path / "w.parquet"
    table = ak.with_field(load_split(tagging_dir, "test")[:5], 7, "label")  # Wqq
    ak.to_parquet(table, wjets)
    assert main(["score", str(run), str(wjets), "--output", str(tmp_path / "w_s.parquet")]) == EXIT_BAD_INPUT
    assert "Wqq" in capsys.readouterr().err
    assert main(["score", str(run), str(wjets), "--output", str(tmp_path / "w_s.parquet"), "--any-label"]) == 0
    # an unusable --device: exit 2 naming it, before any file is read or written
    assert main(["score", str(run), str(wjets), "--output", str(tmp_path / "d.parquet"), "--device", "gpu0"]) == 2
    assert "device 'gpu0' is no torch device" in capsys.readouterr().err and not (tmp_path / "d.parquet").exists()


def test_feature_set_without_its_inputs_is_refused(tagging_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Generated jets have no track displacement: 'full' names the feature set and the missing fields."""
    from hepscale.cli import main

    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(to_dict(_cfg(tagging_dir, "data.features=full"))))
    assert main(["train", str(path), "--output", str(tmp_path / "run")]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "full" in err and "d0" in err
