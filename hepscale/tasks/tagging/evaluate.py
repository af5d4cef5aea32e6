"""Evaluating a tagger run: the ROC on the test split (or any labelled jets), with figures.

:func:`evaluate_tagger_run` scores the jets (:mod:`hepscale.tasks.tagging.score`), computes one signal
class against the background class (QCD) the AUC and the background rejection at 50% and 30%
signal efficiency with seeded bootstrap uncertainties
(:func:`hepscale.metrics.tagging.one_vs_qcd_metrics`), draws the ROC figure
(``evaluation/roc.{pdf,png}`` of the run folder, :func:`hepscale.plotting.roc.plot_roc`) and
merges the record into ``result.json`` under ``evaluation`` (atomically). ``hepscale evaluate
RUNDIR`` does this for a tagger run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EVALUATION_KIND", "evaluated_with", "evaluate_tagger_run"]

#: ``result.json["evaluation"]["kind"]`` of a tagger evaluation
EVALUATION_KIND = "tagging"


def evaluated_with(run: Any, e: Any) -> bool:
    """True when the run's result holds the ROC record of :func:`evaluate_tagger_run` with the
    resamples and seed of the study's evaluation section ``e``, and its figures."""
    from hepscale.errors import DataError

    try:
        result = run.read_result()
    except (OSError, DataError):
        return False
    record = result.get("evaluation") or {}
    return (record.get("kind") == EVALUATION_KIND and record.get("n_bootstraps") == e.bootstraps
            and record.get("seed") == e.seed and bool(record.get("figures")))


def evaluate_tagger_run(run_dir: str | os.PathLike[str], *, jets: str | os.PathLike[str] | None = None,
                        bootstraps: int = 50, seed: int = 0, figures: bool = True, label: str = "Simulation",
                        com: float = 13.0, batch: int = 1024, device: str = "cpu",
                        progress: bool = True) -> tuple[dict[str, Any], Path]:
    """Evaluate a finished tagger run on its test split (or on the labelled jet dataset ``jets``).

    Returns
    -------
    (record, path)
        The evaluation record (``kind``, ``jets``, ``n_jets``, ``metrics`` per signal class,
        ``auc``, ``rejection_50``, ``rejection_30`` as their means, ``figures``) and the
        ``result.json`` it was merged into.

    Raises
    ------
    FileNotFoundError
        When the run is not finished.
    ScoreError, FeatureError, CheckpointError
        On jets the tagger cannot score, or a checkpoint of another run.
    """
    from hepscale._version import code_version
    from hepscale.metrics.tagging import one_vs_qcd_metrics, roc_curve
    from hepscale.runs.folder import RunFolder
    from hepscale.tasks.tagging.data import load_split
    from hepscale.tasks.tagging.features import build_inputs
    from hepscale.tasks.tagging.score import ScoreError, load_tagger, score_inputs

    run = RunFolder(run_dir)
    if not run.finished:
        raise FileNotFoundError(f"run directory {run.path} has no {RunFolder.RESULT} (the run is not finished)")
    model, cfg, ckpt = load_tagger(run.path, device=device)
    classes = list(ckpt["classes"])
    if jets is None:
        data, source = load_split(cfg.data.dataset, "test"), f"{cfg.data.dataset}/test"
        y = np.asarray(data["class_index"], dtype=np.int64)
    else:
        from hepscale.jets.dataset import LABEL_NAMES, read_jets

        data, source = read_jets(jets), str(jets)
        codes = {name: code for code, name in LABEL_NAMES.items()}
        to_class = {codes[c]: i for i, c in enumerate(classes) if c in codes}
        labels = np.asarray(data["label"], dtype=np.int64)
        unknown = sorted(set(np.unique(labels).tolist()) - set(to_class))
        if unknown:
            raise ScoreError(f"{jets}: labels {unknown} are not classes the tagger was trained on ({classes})")
        y = np.array([to_class[v] for v in labels], dtype=np.int64)
    if len(y) == 0:
        raise ScoreError(f"{source}: no jets to evaluate")
    inputs = build_inputs(data, cfg.data.features, cfg.data.max_particles, source=source)
    prob = score_inputs(model, inputs, batch=batch, device=device, progress=progress, desc="evaluate")
    per_class = one_vs_qcd_metrics(prob, y, class_names=classes, background=0, signal_efficiencies=(0.5, 0.3),
                                   n_bootstraps=bootstraps, seed=seed)
    record: dict[str, Any] = {"kind": EVALUATION_KIND, "jets": source, "n_jets": int(len(y)), "classes": classes,
                              "metrics": per_class, "n_bootstraps": bootstraps, "seed": seed}
    for key, eff in (("auc", None), ("rejection_50", "0.5"), ("rejection_30", "0.3")):
        values = [m["auc"] if eff is None else m["rejection"][eff] for m in per_class.values()]
        record[key] = None if any(v is None for v in values) else float(np.mean(values))
    if figures:
        curves = {}
        for i, name in enumerate(classes[1:], start=1):
            sel = (y == i) | (y == 0)
            if not (y == i).any():
                continue
            pc, pb = prob[sel, i], prob[sel, 0]
            score = np.divide(pc, pc + pb, out=np.full_like(pc, 0.5), where=(pc + pb) > 0)
            eps_s, eps_b, _ = roc_curve(score, (y[sel] == i).astype(int))
            curves[f"{name} vs {classes[0]}"] = (eps_s, eps_b)
        from hepscale.plotting.roc import plot_roc

        named = {f"{name} vs {classes[0]}": rec for name, rec in per_class.items()}
        files = plot_roc(curves, run.evaluation_dir / "roc", rejections=named, label=label, com=com,
                         title=f"{cfg.model.size}, {cfg.data.features}, {cfg.data.max_particles} particles")
        record["figures"] = [str(f) for f in files]
    record["code_version"] = dict(code_version())
    return record, run.merge_result("evaluation", record)
