"""Tagging metrics: ROC curve, AUC and background rejection at fixed signal efficiency.

Conventions:

- a **binary** score is larger for signal-like jets; ``labels`` are 1 (signal) and 0
  (background); jets may carry non-negative weights.
- the ROC curve is ``(eps_S, eps_B)`` over all distinct score thresholds, starting at (0, 0);
  the AUC is the area under ``eps_S(eps_B)`` (trapezoids), i.e. the probability that a
  signal jet scores above a background jet, ties counting one half (Mann-Whitney).
- the background rejection at signal efficiency ``eps_S`` is ``1 / eps_B(eps_S)``, with
  ``eps_B`` linearly interpolated along the ROC curve. When no background jet passes the
  cut the rejection is ``inf`` (the sample is too small to measure it; JSON output writes
  ``null`` and logs a warning).
- **multi-class** outputs (probabilities of shape (n_jets, n_classes), JetClass order with
  QCD = 0) are evaluated one-vs-QCD as in the JetClass papers (Particle Transformer): for
  each signal class X, on jets of class X and QCD only, the score is
  ``p_X / (p_X + p_QCD)``.

Uncertainties: seeded bootstrap over jets (resampling with replacement); each resample is
the sample with integer weights, so the jets are sorted once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_SIGNAL_EFFICIENCIES",
    "roc_curve",
    "auc",
    "background_rejection",
    "binary_metrics",
    "one_vs_qcd_metrics",
]

logger = logging.getLogger(__name__)

#: signal efficiencies at which background rejections are reported by default
DEFAULT_SIGNAL_EFFICIENCIES: tuple[float, ...] = (0.3, 0.5)


def _check_binary(scores: Any, labels: Any, weights: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores has {s.size} entries but labels has {y.size}")
    if s.size == 0:
        raise ValueError("scores: the sample is empty (0 jets)")
    if not np.isfinite(s).all():
        raise ValueError(f"scores: {int((~np.isfinite(s)).sum())} jet(s) have NaN or inf scores")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"labels must be 0 (background) or 1 (signal), got values {sorted(values)}")
    y = y.astype(bool)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != s.shape or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite, non-negative and one per jet")
    if not (w[y] > 0).any():
        raise ValueError("labels: no signal jets (label 1) with positive weight")
    if not (w[~y] > 0).any():
        raise ValueError("labels: no background jets (label 0) with positive weight")
    return s, y, w


def _sorted(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order by descending score and the positions closing each group of equal scores."""
    order = np.argsort(-s, kind="stable")
    ss = s[order]
    last = np.flatnonzero(np.diff(ss) != 0)
    ends = np.concatenate([last, [ss.size - 1]])
    return order, ends


def _roc_from_sorted(ysort: np.ndarray, wsort: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tps = np.cumsum(np.where(ysort, wsort, 0.0))[ends]
    fps = np.cumsum(np.where(ysort, 0.0, wsort))[ends]
    eps_s = np.concatenate([[0.0], tps / tps[-1]])
    eps_b = np.concatenate([[0.0], fps / fps[-1]])
    return eps_s, eps_b


def roc_curve(scores: Any, labels: Any, *, weights: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of a binary score.

    Parameters
    ----------
    scores
        Shape (n_jets,), larger for signal.
    labels
        Shape (n_jets,), 1 for signal, 0 for background.
    weights
        Optional non-negative per-jet weights.

    Returns
    -------
    eps_s, eps_b, thresholds
        Signal and background efficiencies for the cut ``score >= threshold``, shapes
        (n_thresholds + 1,) starting at (0, 0) (threshold ``inf``).
    """
    s, y, w = _check_binary(scores, labels, weights)
    order, ends = _sorted(s)
    eps_s, eps_b = _roc_from_sorted(y[order], w[order], ends)
    thresholds = np.concatenate([[np.inf], s[order][ends]])
    return eps_s, eps_b, thresholds


def _auc(eps_s: np.ndarray, eps_b: np.ndarray) -> float:
    return float(np.sum(np.diff(eps_b) * (eps_s[1:] + eps_s[:-1]) / 2))


def _rejection(eps_s: np.ndarray, eps_b: np.ndarray, target: float) -> float:
    eb = float(np.interp(target, eps_s, eps_b))
    return math.inf if eb <= 0 else 1.0 / eb


def auc(scores: Any, labels: Any, *, weights: Any = None) -> float:
    """Area under the ROC curve (probability that signal outscores background, ties 1/2)."""
    eps_s, eps_b, _ = roc_curve(scores, labels, weights=weights)
    return _auc(eps_s, eps_b)


def background_rejection(
    scores: Any, labels: Any, *, signal_efficiency: float = 0.5, weights: Any = None
) -> float:
    """``1 / eps_B`` at the given signal efficiency (``inf`` if no background passes)."""
    if not 0.0 < signal_efficiency <= 1.0:
        raise ValueError(f"signal_efficiency must be in (0, 1], got {signal_efficiency}")
    eps_s, eps_b, _ = roc_curve(scores, labels, weights=weights)
    return _rejection(eps_s, eps_b, signal_efficiency)


def _json_number(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def binary_metrics(
    scores: Any,
    labels: Any,
    *,
    weights: Any = None,
    signal_efficiencies: Sequence[float] = DEFAULT_SIGNAL_EFFICIENCIES,
    n_bootstraps: int = 50,
    seed: int | None = 0,
) -> dict[str, Any]:
    """AUC and background rejections with seeded bootstrap uncertainties.

    Returns
    -------
    dict
        ``{"auc": a, "auc_std": s, "rejection": {"0.3": r, ...}, "rejection_std": {...},
        "n_signal": int, "n_background": int, "n_bootstraps": int}``. The central values
        use the full sample; ``*_std`` are the standard deviations over ``n_bootstraps``
        resamples with replacement (0 disables). An infinite rejection is written as None
        with a warning in the log.
    """
    for e in signal_efficiencies:
        if not 0.0 < e <= 1.0:
            raise ValueError(f"signal_efficiencies: {e} is not in (0, 1]")
    s, y, w = _check_binary(scores, labels, weights)
    order, ends = _sorted(s)
    ysort, wsort = y[order], w[order]
    eps_s, eps_b = _roc_from_sorted(ysort, wsort, ends)
    central_auc = _auc(eps_s, eps_b)
    central_rej = {e: _rejection(eps_s, eps_b, e) for e in signal_efficiencies}
    boot_auc: list[float] = []
    boot_rej: dict[float, list[float]] = {e: [] for e in signal_efficiencies}
    rng = np.random.default_rng(seed)
    for _ in range(n_bootstraps):
        counts = np.bincount(rng.integers(0, s.size, size=s.size), minlength=s.size)
        wb = wsort * counts[order]
        if not (wb[ysort] > 0).any() or not (wb[~ysort] > 0).any():
            continue
        es, eb = _roc_from_sorted(ysort, wb, ends)
        boot_auc.append(_auc(es, eb))
        for e in signal_efficiencies:
            boot_rej[e].append(_rejection(es, eb, e))
    out: dict[str, Any] = {
        "auc": central_auc,
        "auc_std": float(np.std(boot_auc, ddof=1)) if len(boot_auc) > 1 else None,
        "rejection": {},
        "rejection_std": {},
        "n_signal": int(y.sum()),
        "n_background": int((~y).sum()),
        "n_bootstraps": int(n_bootstraps),
    }
    for e in signal_efficiencies:
        key = f"{e:g}"
        if not math.isfinite(central_rej[e]):
            logger.warning("no background jet passes the cut at signal efficiency %g: rejection unmeasured", e)
        out["rejection"][key] = _json_number(central_rej[e])
        vals = np.asarray(boot_rej[e])
        finite = vals[np.isfinite(vals)]
        out["rejection_std"][key] = (
            float(np.std(finite, ddof=1)) if finite.size > 1 and finite.size == vals.size else None
        )
    return out


def one_vs_qcd_metrics(
    probabilities: Any,
    labels: Any,
    *,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    background: int = 0,
    signal_efficiencies: Sequence[float] = DEFAULT_SIGNAL_EFFICIENCIES,
    n_bootstraps: int = 50,
    seed: int | None = 0,
) -> dict[str, dict[str, Any]]:
    """One-vs-QCD metrics of a multi-class tagger (JetClass convention).

    Parameters
    ----------
    probabilities
        Shape (n_jets, n_classes), class probabilities (softmax outputs).
    labels
        Shape (n_jets,), integer true class.
    class_names
        Names per class index (default :data:`hepscale.jets.dataset.LABEL_NAMES`).
    background
        Index of the background class (QCD = 0).

    Returns
    -------
    dict
        ``{class name: binary_metrics(...)}`` for every class other than ``background``
        that has jets in the sample, with score ``p_X / (p_X + p_bkg)`` on jets of class X
        and of the background class.
    """
    prob = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels).ravel()
    if prob.ndim != 2 or prob.shape[0] != y.size:
        raise ValueError(f"probabilities: expected shape ({y.size}, n_classes), got {prob.shape}")
    if not np.isfinite(prob).all():
        raise ValueError("probabilities: NaN or inf values")
    n_classes = prob.shape[1]
    if not 0 <= background < n_classes:
        raise ValueError(f"background class {background} outside 0..{n_classes - 1}")
    if class_names is None:
        from hepscale.jets.dataset import LABEL_NAMES

        names: Mapping[int, str] = LABEL_NAMES
    elif isinstance(class_names, Mapping):
        names = class_names
    else:
        names = dict(enumerate(class_names))
    if not (y == background).any():
        raise ValueError(f"labels: no jets of the background class {background}")
    out: dict[str, dict[str, Any]] = {}
    for c in range(n_classes):
        if c == background or not (y == c).any():
            continue
        sel = (y == c) | (y == background)
        pc, pb = prob[sel, c], prob[sel, background]
        denom = pc + pb
        score = np.divide(pc, denom, out=np.full_like(pc, 0.5), where=denom > 0)
        out[str(names.get(c, c))] = binary_metrics(
            score, (y[sel] == c).astype(int), signal_efficiencies=signal_efficiencies,
            n_bootstraps=n_bootstraps, seed=seed,
        )
    return out
