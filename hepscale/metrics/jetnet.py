"""JetNet-style generative metrics: W1m, W1p, W1efp, FPD and KPD, seeded.

Definitions follow the JetNet library (``jetnet.evaluation.gen_metrics``, v0.2.5; Kansal
et al., arXiv:2106.11535 and arXiv:2211.10295), with one deliberate difference: every
random draw comes from a ``numpy.random.Generator`` seeded by the caller, so the numbers
are reproducible (JetNet's W1 metrics draw from an unseeded module-level generator).
Called with the same generator state, the W1 functions make exactly JetNet's draws.

Particle arrays use JetNet's layout: shape (n_jets, n_particles, 3) with features
``[eta_rel, phi_rel, pt_rel]`` (``eta - eta_jet``, ``phi - phi_jet`` wrapped to [-pi, pi),
``pt / pt_jet``), zero-padded, plus a boolean mask (n_jets, n_particles).
:func:`particle_arrays` builds them from a jet dataset (the leading ``n_particles``
constituents, default 30 as in JetNet).

- **W1m**: 1D Wasserstein distance between the jet masses computed from the (massless)
  particles, i.e. the relative mass ``m / pt_jet`` for ``pt_rel`` inputs; ``n_batches``
  draws of ``n_eval`` jets with replacement from each sample -> mean and std (ddof 0).
- **W1p**: the same per particle feature, over all unmasked particles of the drawn jets
  (zero-padded particles excluded); the mean over the three features is the headline number.
- **W1efp**: the same per energy-flow polynomial, for the five prime EFPs with ``n = 4``
  vertices and ``d = 4`` edges, measure ``hadr`` with ``beta = 1``, unnormalized
  ``z_i = pt_rel_i`` and ``theta_ij = sqrt(dy^2 + dphi^2)`` (energyflow's
  ``EFPSet(("n==", 4), ("d==", 4), ("p==", 1), measure="hadr", beta=1, normed=None)``),
  computed here in closed form with matrix products (no energyflow needed).
- **FPD** (Frechet physics distance): Frechet distance between Gaussians fitted to the
  feature sets (features divided by the real sample's max |value|), measured for
  ``num_points`` batch sizes regular in ``1/N`` between ``min_samples`` and
  ``max_samples``, averaged over ``num_batches`` draws each, and extrapolated linearly to
  ``N -> infinity``; returns the intercept and its fit error.
- **KPD** (kernel physics distance): unbiased MMD^2 with the quartic polynomial
  kernel ``k(x, y) = (x . y / d + 1)^4`` over ``num_batches`` draws of ``batch_size``;
  returns the median and half the 16-84 % interquantile range.

FPD and KPD are defined on any feature matrix; JetNet recommends the 36 EFPs with
``d <= 4`` (:func:`fpd_kpd_features`, which needs the optional ``energyflow`` package).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

__all__ = [
    "particle_arrays",
    "jet_masses",
    "prime_efps_n4_d4",
    "w1m",
    "w1p",
    "w1efp",
    "fpd",
    "kpd",
    "frechet_distance",
    "fpd_kpd_features",
    "evaluate_datasets",
]

logger = logging.getLogger(__name__)


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_particles(particles: Any, mask: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(particles, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise ValueError(f"{name}: expected shape (n_jets, n_particles, >=3), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: the sample is empty (0 jets)")
    m = np.ones(arr.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool).reshape(arr.shape[:2])
    if not np.isfinite(arr[m]).all():
        raise ValueError(f"{name}: NaN or inf particle features")
    return arr, m


def particle_arrays(jets: Any, *, n_particles: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """JetNet-layout particle arrays from a jet dataset.

    Parameters
    ----------
    jets
        Awkward array with the jet dataset schema (fields ``pt`` and ``constituents`` with
        ``pt, deta, dphi``), constituents sorted by descending pT.
    n_particles
        Leading constituents kept; shorter jets are zero-padded.

    Returns
    -------
    particles, mask
        Shapes (n_jets, n_particles, 3) ``[eta_rel, phi_rel, pt_rel]`` and
        (n_jets, n_particles) bool.
    """
    import awkward as ak

    cons = jets.constituents[:, :n_particles]
    jet_pt = ak.to_numpy(jets.pt).astype(np.float64)
    out = np.zeros((len(jets), n_particles, 3))
    counts = ak.to_numpy(ak.num(cons))
    mask = np.arange(n_particles)[None, :] < counts[:, None]
    for k, field in enumerate(("deta", "dphi", "pt")):
        flat = ak.to_numpy(ak.flatten(cons[field])).astype(np.float64)
        out[..., k][mask] = flat
    out[..., 2] /= np.where(jet_pt > 0, jet_pt, 1.0)[:, None]
    return out, mask


def jet_masses(particles: Any, mask: Any = None) -> np.ndarray:
    """Mass of the sum of massless particles ``[eta, phi, pt]``, shape (n_jets,)."""
    arr, m = _check_particles(particles, mask, "particles")
    pt = np.where(m, arr[..., 2], 0.0)
    eta, phi = arr[..., 0], arr[..., 1]
    px = (pt * np.cos(phi)).sum(axis=1)
    py = (pt * np.sin(phi)).sum(axis=1)
    pz = (pt * np.sinh(eta)).sum(axis=1)
    e = (pt * np.cosh(eta)).sum(axis=1)
    return np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))


def prime_efps_n4_d4(particles: Any, mask: Any = None, *, chunk: int = 4096) -> np.ndarray:
    """The five prime EFPs with 4 vertices and 4 edges, shape (n_jets, 5).

    Measure ``hadr``, ``beta = 1``, ``z_i = pt_i`` (unnormalized), ``theta_ij`` the
    rapidity-azimuth distance (azimuth wrapped). Columns in the order of energyflow's
    ``EFPSet``, as multigraphs on vertices a-d: star with one doubled edge (ab x2, ac, ad);
    path with a doubled end edge (ab x2, bc, cd); path with a doubled middle edge
    (ab, bc x2, cd); triangle with a pendant edge (ab, bc, ca, ad); square (ab, bc, cd, da).
    Sums run over all index tuples, as in energyflow.
    """
    arr, m = _check_particles(particles, mask, "particles")
    out = np.empty((arr.shape[0], 5))
    for s in range(0, arr.shape[0], chunk):
        a = arr[s : s + chunk]
        z = np.where(m[s : s + chunk], a[..., 2], 0.0)
        deta = a[:, :, None, 0] - a[:, None, :, 0]
        dphi = np.abs(a[:, :, None, 1] - a[:, None, :, 1])
        dphi = np.pi - np.abs(dphi - np.pi)
        th = np.sqrt(deta * deta + dphi * dphi)
        th2 = th * th
        zt = z[:, :, None] * th  # (Z Theta)_ab = z_a theta_ab
        zt2 = zt @ zt
        v = np.einsum("nab,nb->na", th, z)  # v_a = sum_b theta_ab z_b
        u = np.einsum("nab,nb->na", th2, z)  # u_a = sum_b theta_ab^2 z_b
        square = np.einsum("nab,nba->n", zt2, zt2)
        # triangle through a: (Theta Z Theta Z Theta)_aa = sum_bc theta_ab z_b theta_bc z_c theta_ca
        tri = np.einsum("nab,nbc,nca->na", th * z[:, None, :], th * z[:, None, :], th)
        paw = np.einsum("na,na,na->n", z, v, tri)
        star = np.einsum("na,na,na->n", z, u, v * v)
        path_end = np.einsum("nb,nbc,nc->n", u * z, th, z * v)
        path_mid = np.einsum("nb,nbc,nc->n", v * z, th2, z * v)
        # energyflow's EFPSet order
        out[s : s + chunk] = np.column_stack([star, path_end, path_mid, paw, square])
    return out


def _w1_batches(
    f1: np.ndarray, f2: np.ndarray, *, n_eval: int, n_batches: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    from scipy.stats import wasserstein_distance

    w = []
    for _ in range(n_batches):
        r1 = rng.choice(len(f1), size=n_eval)
        r2 = rng.choice(len(f2), size=n_eval)
        w.append([wasserstein_distance(f1[r1, i], f2[r2, i]) for i in range(f1.shape[1])])
    arr = np.asarray(w)
    return arr.mean(axis=0), arr.std(axis=0)


def _check_batches(n_eval: int, n_batches: int) -> None:
    if n_eval < 1 or n_batches < 1:
        raise ValueError(f"n_eval and n_batches must be positive, got {n_eval} and {n_batches}")


def w1m(
    particles1: Any,
    particles2: Any,
    *,
    mask1: Any = None,
    mask2: Any = None,
    n_eval: int = 50_000,
    n_batches: int = 5,
    seed: int | np.random.Generator | None = 0,
) -> tuple[float, float]:
    """W1 between jet masses (relative mass for ``pt_rel`` inputs): (mean, std) over batches."""
    _check_batches(n_eval, n_batches)
    m1 = jet_masses(particles1, mask1)[:, None]
    m2 = jet_masses(particles2, mask2)[:, None]
    mean, std = _w1_batches(m1, m2, n_eval=n_eval, n_batches=n_batches, rng=_rng(seed))
    return float(mean[0]), float(std[0])


def w1p(
    particles1: Any,
    particles2: Any,
    *,
    mask1: Any = None,
    mask2: Any = None,
    n_eval: int = 50_000,
    n_batches: int = 5,
    exclude_zeros: bool = True,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """W1 per particle feature over all unmasked particles: (means, stds), shapes (3,)."""
    from scipy.stats import wasserstein_distance

    _check_batches(n_eval, n_batches)
    a1, k1 = _check_particles(particles1, mask1, "particles1")
    a2, k2 = _check_particles(particles2, mask2, "particles2")
    a1, a2 = a1[..., :3], a2[..., :3]
    if exclude_zeros:
        k1 = k1 & (np.linalg.norm(a1, axis=2) != 0)
        k2 = k2 & (np.linalg.norm(a2, axis=2) != 0)
    rng = _rng(seed)
    w = []
    for _ in range(n_batches):
        r1 = rng.choice(len(a1), size=n_eval)
        r2 = rng.choice(len(a2), size=n_eval)
        p1 = a1[r1][k1[r1]]
        p2 = a2[r2][k2[r2]]
        if len(p1) == 0 or len(p2) == 0:
            raise ValueError("w1p: a drawn batch has no unmasked particles")
        w.append([wasserstein_distance(p1[:, i], p2[:, i]) for i in range(3)])
    arr = np.asarray(w)
    return arr.mean(axis=0), arr.std(axis=0)


def w1efp(
    particles1: Any,
    particles2: Any,
    *,
    mask1: Any = None,
    mask2: Any = None,
    n_eval: int = 50_000,
    n_batches: int = 5,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """W1 per prime n=4, d=4 EFP (:func:`prime_efps_n4_d4`): (means, stds), shapes (5,)."""
    _check_batches(n_eval, n_batches)
    e1 = prime_efps_n4_d4(particles1, mask1)
    e2 = prime_efps_n4_d4(particles2, mask2)
    return _w1_batches(e1, e2, n_eval=n_eval, n_batches=n_batches, rng=_rng(seed))


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, *, eps: float = 1e-6) -> float:
    """``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))`` (the FID formula, stabilized)."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    s1, s2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _normalise(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    maxes = np.max(np.abs(x), axis=0)
    maxes[maxes == 0] = 1
    return x / maxes, y / maxes


def _features(real: Any, gen: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(real, dtype=np.float64)
    y = np.asarray(gen, dtype=np.float64)
    for arr, name in ((x, "real_features"), (y, "gen_features")):
        if arr.ndim != 2 or arr.shape[0] < 2:
            raise ValueError(f"{name}: expected shape (n_samples >= 2, n_features), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}: NaN or inf values")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real_features has {x.shape[1]} features, gen_features {y.shape[1]}")
    return x, y


def fpd(
    real_features: Any,
    gen_features: Any,
    *,
    min_samples: int = 20_000,
    max_samples: int = 50_000,
    num_batches: int = 20,
    num_points: int = 10,
    normalise: bool = True,
    seed: int = 42,
) -> tuple[float, float]:
    """Frechet physics distance extrapolated to infinite sample size: (value, error)."""
    from scipy.optimize import curve_fit

    x, y = _features(real_features, gen_features)
    if normalise:
        x, y = _normalise(x, y)
    batches = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    vals = []
    for batch_size in batches:
        points = []
        for _ in range(num_batches):
            r1 = rng.choice(len(x), size=batch_size)
            r2 = rng.choice(len(y), size=batch_size)
            s1, s2 = x[r1], y[r2]
            points.append(
                frechet_distance(s1.mean(axis=0), np.cov(s1, rowvar=False), s2.mean(axis=0), np.cov(s2, rowvar=False))
            )
        vals.append(np.mean(points))
    params, covs = curve_fit(
        lambda n_inv, a, b: a + b * n_inv, 1 / batches, vals, bounds=([0, 0], [np.inf, np.inf])
    )
    return float(params[0]), float(np.sqrt(np.diag(covs)[0]))


def _mmd_poly_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 4, block: int = 2048) -> float:
    gamma = 1.0 / x.shape[1]

    def ksum(a: np.ndarray, b: np.ndarray) -> float:
        total = 0.0
        for s in range(0, len(a), block):
            total += float((((a[s : s + block] @ b.T) * gamma + 1.0) ** degree).sum())
        return total

    def kdiag(a: np.ndarray) -> float:
        return float((((a * a).sum(axis=1) * gamma + 1.0) ** degree).sum())

    m, n = len(x), len(y)
    return (
        (ksum(x, x) - kdiag(x)) / (m * (m - 1))
        + (ksum(y, y) - kdiag(y)) / (n * (n - 1))
        - 2 * ksum(x, y) / (m * n)
    )


def kpd(
    real_features: Any,
    gen_features: Any,
    *,
    num_batches: int = 10,
    batch_size: int = 5_000,
    normalise: bool = True,
    seed: int = 42,
) -> tuple[float, float]:
    """Kernel physics distance: (median, half the 16-84 % range) of the unbiased MMD^2."""
    from scipy.stats import iqr

    x, y = _features(real_features, gen_features)
    if normalise:
        x, y = _normalise(x, y)
    vals = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        r1 = rng.choice(len(x), size=batch_size)
        r2 = rng.choice(len(y), size=batch_size)
        vals.append(_mmd_poly_unbiased(x[r1], y[r2]))
    return float(np.median(vals)), float(iqr(vals, rng=(16.275, 83.725)) / 2)


def fpd_kpd_features(particles: Any, mask: Any = None, *, n_jobs: int | None = 1) -> np.ndarray:
    """The 36 EFPs with ``d <= 4`` recommended by JetNet for FPD and KPD, shape (n_jets, 36).

    Needs the optional ``energyflow`` package (``pip install --no-deps energyflow``: its
    ``wasserstein`` dependency, unused here, pins numpy < 2).
    """
    try:
        import energyflow
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "FPD/KPD on EFPs need the energyflow package: pip install --no-deps 'energyflow>=1.3'"
        ) from err
    arr, m = _check_particles(particles, mask, "particles")
    arr = np.where(m[..., None], arr[..., :3], 0.0)
    efpset = energyflow.EFPSet(("d<=", 4), measure="hadr", beta=1, normed=None, coords="ptyphim")
    return np.asarray(efpset.batch_compute(arr[:, :, [2, 0, 1]], n_jobs=n_jobs or os.cpu_count()))


def evaluate_datasets(
    generated: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    *,
    n_particles: int = 30,
    n_eval: int = 50_000,
    n_batches: int = 5,
    seed: int = 0,
    fpd_kwargs: dict[str, Any] | None = None,
    kpd_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """All JetNet-style metrics between two jet dataset files, as a JSON-ready dict.

    Each metric is ``{"value": v, "error": e}`` as JetNet reports it: for W1m, W1p and
    W1efp the mean and standard deviation over the batches (W1p and W1efp averaged over
    the features / EFPs, with the per-feature numbers beside them), for FPD the
    extrapolated value and its fit error, for KPD the median and half the 16-84 % range.

    ``n_eval`` is lowered to the smaller sample size when needed (logged and recorded as
    ``n_eval``), and so are FPD's batch sizes (``min(20k, 0.4 n)`` to ``min(50k, n)``) and
    KPD's (``min(5k, n)``). FPD and KPD use :func:`fpd_kpd_features` when ``energyflow`` is installed;
    otherwise they are ``None`` with the reason under ``"fpd_kpd_note"``.
    """
    from hepscale.jets.dataset import read_jets

    g = read_jets(generated, columns=["pt", "constituents"])
    r = read_jets(reference, columns=["pt", "constituents"])
    pg, mg = particle_arrays(g, n_particles=n_particles)
    pr, mr = particle_arrays(r, n_particles=n_particles)
    n = min(n_eval, len(pg), len(pr))
    if n < n_eval:
        logger.warning("JetNet metrics: n_eval lowered from %d to %d (sample sizes)", n_eval, n)
    rng = np.random.default_rng(seed)
    m_mean, m_std = w1m(pr, pg, mask1=mr, mask2=mg, n_eval=n, n_batches=n_batches, seed=rng)
    p_mean, p_std = w1p(pr, pg, mask1=mr, mask2=mg, n_eval=n, n_batches=n_batches, seed=rng)
    e_mean, e_std = w1efp(pr, pg, mask1=mr, mask2=mg, n_eval=n, n_batches=n_batches, seed=rng)
    out: dict[str, Any] = {
        "n_particles": n_particles,
        "n_eval": n,
        "n_batches": n_batches,
        "seed": seed,
        "w1m": {"value": m_mean, "error": m_std},
        "w1p": {"value": float(p_mean.mean()), "error": float(p_std.mean()),
                "per_feature": dict(zip(("eta_rel", "phi_rel", "pt_rel"), p_mean.tolist())),
                "per_feature_error": dict(zip(("eta_rel", "phi_rel", "pt_rel"), p_std.tolist()))},
        "w1efp": {"value": float(e_mean.mean()), "error": float(e_std.mean()),
                  "per_efp": e_mean.tolist(), "per_efp_error": e_std.tolist()},
    }
    try:
        fr = fpd_kpd_features(pr, mr)
        fg = fpd_kpd_features(pg, mg)
    except ModuleNotFoundError as err:
        logger.warning("FPD/KPD skipped: %s", err)
        out["fpd"] = None
        out["kpd"] = None
        out["fpd_kpd_note"] = str(err)
        return out
    # JetNet's batch sizes (20k to 50k) where the samples allow, else 40 % to 100 % of them
    fk = {"min_samples": min(20_000, max(2, int(0.4 * n))), "max_samples": min(50_000, n), **(fpd_kwargs or {})}
    kk = {"batch_size": min(5_000, n), **(kpd_kwargs or {})}
    f_val, f_err = fpd(fr, fg, **fk)
    k_val, k_err = kpd(fr, fg, **kk)
    out["fpd"] = {"value": f_val, "error": f_err, **fk}
    out["kpd"] = {"value": k_val, "error": k_err, **kk}
    return out
