from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from hepscale.metrics import tagging


def test_roc_and_auc_known_answer() -> None:
    scores = [0.9, 0.8, 0.7, 0.6]
    labels = [1, 0, 1, 0]
    eps_s, eps_b, thr = tagging.roc_curve(scores, labels)
    np.testing.assert_allclose(eps_s, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(eps_b, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(thr[1:], [0.9, 0.8, 0.7, 0.6])
    assert tagging.auc(scores, labels) == pytest.approx(0.75)
    # eps_S = 0.75 lies halfway between (0.5, 0.5) and (1, 0.5): eps_B = 0.5
    assert tagging.background_rejection(scores, labels, signal_efficiency=0.75) == pytest.approx(2.0)


def test_auc_equals_mann_whitney_with_ties() -> None:
    rng = np.random.default_rng(0)
    sig = np.round(rng.normal(0.5, 1, 700), 1)
    bkg = np.round(rng.normal(0.0, 1, 900), 1)
    scores = np.concatenate([sig, bkg])
    labels = np.concatenate([np.ones(700, int), np.zeros(900, int)])
    u = scipy.stats.mannwhitneyu(sig, bkg).statistic
    assert tagging.auc(scores, labels) == pytest.approx(u / (700 * 900), rel=1e-12)


def test_rejection_matches_gaussian_expectation() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    scores = np.concatenate([rng.normal(1.0, 1.0, n), rng.normal(0.0, 1.0, n)])
    labels = np.concatenate([np.ones(n, int), np.zeros(n, int)])
    for eff in (0.3, 0.5):
        cut = scipy.stats.norm.ppf(1 - eff, loc=1.0)
        expected = 1.0 / scipy.stats.norm.sf(cut)
        assert tagging.background_rejection(scores, labels, signal_efficiency=eff) == pytest.approx(expected, rel=0.02)
    # AUC of two unit Gaussians separated by 1: Phi(1 / sqrt(2))
    assert tagging.auc(scores, labels) == pytest.approx(scipy.stats.norm.cdf(1 / np.sqrt(2)), abs=2e-3)


def test_integer_weights_equal_repeated_jets() -> None:
    rng = np.random.default_rng(2)
    scores = rng.random(300)
    labels = rng.integers(0, 2, 300)
    w = rng.integers(0, 4, 300)
    a = tagging.binary_metrics(scores, labels, weights=w, n_bootstraps=0)
    b = tagging.binary_metrics(np.repeat(scores, w), np.repeat(labels, w), n_bootstraps=0)
    assert a["auc"] == pytest.approx(b["auc"], rel=1e-12)
    assert a["rejection"] == pytest.approx(b["rejection"], rel=1e-12)


def test_bootstrap_std_matches_spread_of_independent_samples() -> None:
    rng = np.random.default_rng(3)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate([rng.normal(1, 1, n), rng.normal(0, 1, n)]), np.repeat([1, 0], n)

    s, y = sample(1000)
    res = tagging.binary_metrics(s, y, n_bootstraps=40, seed=7)
    assert res == tagging.binary_metrics(s, y, n_bootstraps=40, seed=7)
    spread = np.std([tagging.auc(*sample(1000)) for _ in range(40)], ddof=1)
    assert res["auc_std"] == pytest.approx(spread, rel=0.5)
    assert set(res["rejection"]) == {"0.3", "0.5"}
    assert res["rejection_std"]["0.5"] > 0
    assert res["n_signal"] == 1000 and res["n_background"] == 1000


def test_one_vs_qcd_uses_ratio_score_on_two_classes() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    labels = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[labels]
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    out = tagging.one_vs_qcd_metrics(prob, labels, n_bootstraps=3, signal_efficiencies=(0.5,))
    assert set(out) == {"Hbb", "Hcc"}
    sel = (labels == 2) | (labels == 0)
    score = prob[sel, 2] / (prob[sel, 2] + prob[sel, 0])
    expected = tagging.auc(score, (labels[sel] == 2).astype(int))
    assert out["Hcc"]["auc"] == pytest.approx(expected, rel=1e-12)
    assert 0.75 < out["Hbb"]["auc"] < 1.0


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        tagging.auc([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="no signal"):
        tagging.auc([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="0 \\(background\\) or 1"):
        tagging.auc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="empty"):
        tagging.auc([], [])
    with pytest.raises(ValueError, match="signal_efficiencies"):
        tagging.binary_metrics([0.1, 0.2], [0, 1], signal_efficiencies=(1.5,))
    with pytest.raises(ValueError, match="background class"):
        tagging.one_vs_qcd_metrics(np.full((2, 3), 1 / 3), [1, 2])


def test_unmeasurable_rejection_is_null_not_a_number(caplog: pytest.LogCaptureFixture) -> None:
    scores = [0.9, 0.8, 0.1, 0.0]
    labels = [1, 1, 0, 0]
    res = tagging.binary_metrics(scores, labels, n_bootstraps=0)
    assert res["auc"] == 1.0
    assert res["rejection"]["0.5"] is None
    assert "rejection unmeasured" in caplog.text
