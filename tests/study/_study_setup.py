"""Shared set-up of the study tests: the repository's studies, a tiny study around a jet file, and a tiny
tagging study around synthetic labelled jets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import yaml
from _synthetic import random_jets

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted((ROOT / "configs" / "studies").glob("*.yaml"))
MODELS_YAML = yaml.safe_load((ROOT / "configs" / "models.yaml").read_text())["sizes"]
TAGGERS_YAML = yaml.safe_load((ROOT / "configs" / "taggers.yaml").read_text())["sizes"]


def make_jets(n: int, *, seed: int = 0, n_max: int = 30) -> ak.Array:
    return random_jets(n, seed=seed, n_max=n_max)


def tiny_dict(output: Path, jets: Path) -> dict[str, Any]:
    return {
        "name": "tiny",
        "output": str(output),
        "data": {"jets": str(jets), "tokenizer": {"n_pt": 8, "n_eta": 4, "n_phi": 4, "max_constituents": 23,
                                                  "val_fraction": 0.4}},
        "train": {"config": str(ROOT / "configs" / "train" / "quick_cpu.yaml"),
                  "overrides": ["data.seq_len=24", "data.batch_size=8", "eval.every=4", "eval.jets=16",
                                "eval.batch_size=8", "checkpoint.every=2", "optim.warmup_steps=2"]},
        "grid": {"models": ["Pico", "XXS"], "lr": {"Pico": 3.0e-3, "XXS": 2.0e-3}, "steps": [8]},
        "evaluation": {"samples": 120, "n": 60, "bootstraps": 3, "projections": 20, "figures": False, "batch": 64},
        "fit": {"n_bootstrap": 10, "fits": [{"name": "loss_vs_N", "law": "log", "x": "N"}]},
        "retries": 0,
    }


def write_study(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _nested_set(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    node = data
    *parents, last = key.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    return data


def labelled_jets(n_per_class: int, *, seed: int = 0, displacement: bool = False) -> ak.Array:
    """Synthetic QCD jets (one prong) and top jets (Tbqq, three prongs) of massless constituents with
    PDG ids and charges (and, with ``displacement``, track displacement d0, dz and their uncertainties)."""
    import numpy as np

    from hepscale.jets.dataset import LABELS, build_jets

    rng = np.random.default_rng(seed)
    charge_of = {22: 0, 130: 0, 211: 1, -211: -1, 11: -1, -13: 1}
    pids = np.array(list(charge_of))
    parts = []
    for name, prongs in (("QCD", 1), ("Tbqq", 3)):
        k = rng.integers(4, 30, n_per_class)
        tot = int(k.sum())
        axes = rng.normal(0.0, 0.25, (n_per_class, prongs, 2)) * (prongs > 1)
        jet = np.repeat(np.arange(n_per_class), k)
        prong = rng.integers(0, prongs, tot)
        pid = rng.choice(pids, tot)
        fields = {
            "pt": rng.exponential(30.0, tot) + 0.6,
            "eta": axes[jet, prong, 0] + rng.normal(0.0, 0.05, tot),
            "phi": axes[jet, prong, 1] + rng.normal(0.0, 0.05, tot),
            "mass": np.zeros(tot),
            "pid": pid,
            "charge": np.array([charge_of[int(p)] for p in pid]),
        }
        if displacement:
            fields.update(d0=rng.normal(0.0, 0.01, tot), dz=rng.normal(0.0, 0.02, tot),
                          d0err=np.full(tot, 0.005), dzerr=np.full(tot, 0.008))
        parts.append(build_jets(ak.unflatten(ak.zip(fields), k), label=LABELS[name], source=f"synthetic_{name}"))
    return ak.concatenate(parts)


def tagging_dict(output: Path, jets: Path) -> dict[str, Any]:
    """A tiny tagging study on the jet file ``jets``: two tagger sizes x two feature sets, a few steps."""
    return {
        "name": "tiny_tagging",
        "task": "tagging",
        "output": str(output),
        "data": {"jets": str(jets), "tagging": {"classes": ["QCD", "Tbqq"], "fractions": [0.6, 0.2, 0.2], "seed": 2}},
        "train": {"config": str(ROOT / "configs" / "train" / "tagger_cpu.yaml"),
                  "overrides": ["data.batch_size=16", "optim.warmup_steps=1", "eval.every=2", "eval.jets=64",
                                "eval.batch_size=64", "eval.bootstraps=3", "checkpoint.every=4"]},
        "grid": {"models": ["Pico", "Nano"], "lr": {"Pico": 3.0e-3, "Nano": 2.0e-3}, "features": ["kin", "kinpid"],
                 "max_particles": [16], "jets": [64]},
        "evaluation": {"bootstraps": 3, "figures": True},
        "fit": {"n_bootstrap": 10, "fits": [{"name": "rejection_vs_loss", "law": "proxy",
                                             "args": ["--metric-col", "rejection_50"]}]},
        "retries": 0,
    }
