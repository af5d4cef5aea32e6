"""``hepscale evaluate``: physics metrics of generated jets against a reference jet dataset.

    hepscale evaluate RUNDIR_OR_SAMPLES --reference JETS.parquet [--n 50000] [--bootstraps 50]

``RUNDIR_OR_SAMPLES`` is either a run directory (it must hold ``samples.parquet``, a jet
dataset, and ``result.json``: a run without ``result.json`` is not finished and is refused)
or a jet dataset file. The metrics are:

- the SWD on the chosen observables (default jet mass, tau21, tau32, D2, constituent
  multiplicity) with bootstrap mean and standard deviation and the SWD floor beside it, and
  the 1D Wasserstein distance of each observable (:mod:`hepscale.metrics.swd`);
- optionally (``--jetnet``) the JetNet-style metrics W1m, W1p, W1efp, FPD and KPD
  (:mod:`hepscale.metrics.jetnet`).

For a run directory the metrics are merged into its ``result.json`` under the key
``"evaluation"`` (read, update, written atomically, every other key kept) and the figures go
to ``RUNDIR/evaluation/``; for a samples file everything goes to ``--output`` (default:
``<samples stem>_evaluation/`` beside it) as ``evaluation.json`` and figures. One figure per
observable: reference and generated distributions with a ratio panel, CMS style.

Bad input is an error, never a silent number: missing files or observables, NaN/inf values
(unless ``--drop-nonfinite``, which drops those jets and records how many), samples smaller
than the bootstrap size.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hepscale.metrics import swd

__all__ = ["evaluate", "plot_observables", "main", "OBSERVABLE_LABELS"]

logger = logging.getLogger(__name__)

#: axis labels of jet observables (units in brackets)
OBSERVABLE_LABELS: dict[str, str] = {
    "pt": r"Jet $p_{T}$ [GeV]",
    "eta": r"Jet $\eta$",
    "phi": r"Jet $\phi$",
    "mass": "Jet mass [GeV]",
    "msoftdrop": "Soft-drop mass [GeV]",
    "tau1": r"$\tau_{1}$",
    "tau2": r"$\tau_{2}$",
    "tau3": r"$\tau_{3}$",
    "tau21": r"$\tau_{21}$",
    "tau32": r"$\tau_{32}$",
    "d2": r"$D_{2}$",
    "n_constituents": "Number of constituents",
}

_INTEGER_OBSERVABLES = {"n_constituents"}


def _load_matrix(path: Path, names: Sequence[str], *, what: str) -> np.ndarray:
    from hepscale.jets.dataset import DatasetError, observable_matrix, read_jets

    try:
        jets = read_jets(path, columns=list(names))
    except DatasetError as err:
        raise ValueError(f"{what}: {err}") from err
    return observable_matrix(jets, names)


def _drop_nonfinite(x: np.ndarray, what: str) -> tuple[np.ndarray, int]:
    keep = np.isfinite(x).all(axis=1)
    n_bad = int((~keep).sum())
    if n_bad:
        logger.warning("%s: dropping %d jet(s) with NaN or inf observables", what, n_bad)
    return x[keep], n_bad


def evaluate(
    generated: np.ndarray,
    reference: np.ndarray,
    *,
    observables: Sequence[str] = swd.DEFAULT_OBSERVABLES,
    n_jets: int = swd.DEFAULT_N_JETS,
    n_bootstraps: int = swd.DEFAULT_N_BOOTSTRAPS,
    n_projections: int = swd.DEFAULT_N_PROJECTIONS,
    p: float = swd.DEFAULT_P,
    seed: int | None = 0,
    floor: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """SWD with bootstrap and floor, and per-observable W_p, as a JSON-ready dict.

    Parameters
    ----------
    generated, reference
        Observable matrices, shapes (n_gen, k) and (n_ref, k), columns in the order of
        ``observables``.

    Returns
    -------
    dict
        ``{"swd": SWDResult.to_dict(), "n_generated": n_gen, "n_reference": n_ref}``; the
        SWD is ``["swd"]["mean"]`` +- ``["swd"]["std"]``, its floor ``["swd"]["floor_mean"]``
        +- ``["swd"]["floor_std"]`` (``evaluation.swd.mean`` etc. in a runs table).
    """
    res = swd.bootstrap_swd(
        generated,
        reference,
        observables=observables,
        n_jets=n_jets,
        n_bootstraps=n_bootstraps,
        n_projections=n_projections,
        p=p,
        seed=seed,
        floor=floor,
        progress=progress,
    )
    return {"swd": res.to_dict(), "n_generated": int(len(generated)), "n_reference": int(len(reference))}


def _bins(ref: np.ndarray, gen: np.ndarray, name: str, n_bins: int) -> np.ndarray:
    both = np.concatenate([ref, gen])
    if name in _INTEGER_OBSERVABLES:
        lo, hi = np.floor(np.quantile(both, 0.001)), np.ceil(np.quantile(both, 0.999))
        step = max(1.0, np.ceil((hi - lo + 1) / n_bins))
        return np.arange(lo - 0.5, hi + step + 0.5, step)
    lo, hi = np.quantile(ref, [0.001, 0.999])
    if not hi > lo:
        lo, hi = both.min(), both.max()
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n_bins + 1)


def plot_observables(
    generated: np.ndarray,
    reference: np.ndarray,
    observables: Sequence[str],
    outdir: str | os.PathLike[str],
    *,
    label: str = "Simulation",
    com: float = 13,
    per_observable: dict[str, dict[str, Any]] | None = None,
    n_bins: int = 40,
    p: float = 1.0,
    generated_label: str = "Generated",
    reference_label: str = "Reference",
) -> list[Path]:
    """One figure per observable: normalized distributions and generated/reference ratio.

    Parameters
    ----------
    generated, reference
        Shapes (n_gen, k) and (n_ref, k), columns in the order of ``observables``.
    outdir
        Folder for ``<observable>.pdf`` and ``<observable>.png``.
    label, com
        CMS label text ("Simulation" or "Open Data") and centre-of-mass energy in TeV.
    per_observable
        Optional ``SWDResult.per_observable``: the W_p (mean +- std, floor) is shown in the
        legend, with ``p`` its order.

    Returns
    -------
    list of Path
        The files written.
    """
    import mplhep

    from hepscale.plotting.style import cms_label, cms_style, ratio_axes, save_figure

    out = Path(outdir)
    written: list[Path] = []
    with cms_style():
        for i, name in enumerate(observables):
            g, r = generated[:, i], reference[:, i]
            edges = _bins(r, g, name, n_bins)
            width = np.diff(edges)
            hr, _ = np.histogram(r, bins=edges)
            hg, _ = np.histogram(g, bins=edges)
            nr, ng = max(len(r), 1), max(len(g), 1)
            dr, dg = hr / (nr * width), hg / (ng * width)
            er, eg = np.sqrt(hr) / (nr * width), np.sqrt(hg) / (ng * width)
            fig, ax, rax = ratio_axes()
            mplhep.histplot(dr, edges, yerr=er, ax=ax, label=reference_label, histtype="fill", alpha=0.35, color="C0")
            glabel = generated_label
            if per_observable and name in per_observable:
                w = per_observable[name]
                glabel += f"\n$W_{{{p:g}}}$ = {w['mean']:.3g} $\\pm$ {w['std']:.2g}"
                if w.get("floor_mean") is not None:
                    glabel += f" (floor {w['floor_mean']:.3g})"
            mplhep.histplot(dg, edges, yerr=eg, ax=ax, label=glabel, histtype="errorbar", color="black")
            ax.set_ylabel("Normalized to unit area")
            ax.set_ylim(0, max(dr.max(), dg.max(), 1e-12) * 1.45)
            ax.legend(loc="upper right", fontsize="small")
            cms_label(ax, label=label, com=com)
            centers = 0.5 * (edges[1:] + edges[:-1])
            ok = dr > 0
            ratio = np.divide(dg, dr, out=np.full_like(dg, np.nan), where=ok)
            rerr = np.divide(eg, dr, out=np.full_like(dg, np.nan), where=ok)
            band = np.divide(er, dr, out=np.zeros_like(dr), where=ok)
            rax.stairs(1 + band, edges, baseline=1 - band, fill=True, alpha=0.35, color="C0")
            rax.errorbar(centers[ok], ratio[ok], yerr=rerr[ok], fmt="o", color="black", markersize=3)
            rax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
            rax.set_ylim(0.5, 1.5)
            rax.set_yticks([0.6, 1.0, 1.4])
            rax.set_ylabel("Gen. / Ref.")
            rax.set_xlabel(OBSERVABLE_LABELS.get(name, name))
            rax.set_xlim(edges[0], edges[-1])
            written += save_figure(fig, out / name)
    return written


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hepscale evaluate",
        description="SWD (with bootstrap and floor) and per-observable distances of generated jets "
        "against a reference jet dataset; figures in CMS style.",
    )
    parser.add_argument("target", type=Path, help="run directory (with samples.parquet and result.json) or jet dataset")
    parser.add_argument("--reference", type=Path, required=True, help="reference jet dataset (parquet file or folder)")
    parser.add_argument(
        "--n",
        type=int,
        default=swd.DEFAULT_N_JETS,
        help="jets per bootstrap resample (default 50000); the reference needs twice as many for the floor",
    )
    parser.add_argument("--bootstraps", type=int, default=swd.DEFAULT_N_BOOTSTRAPS, help="resamples (default 50)")
    parser.add_argument(
        "--projections", type=int, default=swd.DEFAULT_N_PROJECTIONS, help="SWD directions (default 1000)"
    )
    parser.add_argument("--p", type=float, default=swd.DEFAULT_P, help="order of the Wasserstein distance (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of directions, split and resamples (default 0)")
    parser.add_argument(
        "--observables",
        default=",".join(swd.DEFAULT_OBSERVABLES),
        help="comma-separated jet dataset fields (default: %(default)s)",
    )
    parser.add_argument("--output", type=Path, default=None, help="folder for evaluation.json and figures")
    parser.add_argument("--label", default="Simulation", help='CMS label text, e.g. "Simulation" or "Open Data"')
    parser.add_argument("--com", type=float, default=13.0, help="centre-of-mass energy in TeV for the label")
    parser.add_argument("--no-floor", action="store_true", help="skip the SWD floor (needs only --n reference jets)")
    parser.add_argument("--no-figures", action="store_true", help="write no figures")
    parser.add_argument(
        "--drop-nonfinite", action="store_true", help="drop jets with NaN/inf observables (counted) instead of failing"
    )
    parser.add_argument("--jetnet", action="store_true", help="also compute W1m, W1p, W1efp, FPD and KPD")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hepscale evaluate``; returns the exit status (0 on success, 2 on bad input)."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return _run(args)
    except (ValueError, KeyError, FileNotFoundError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"hepscale evaluate: error: {msg}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from hepscale._io import atomic_write_json
    from hepscale._version import code_version

    names = [n.strip() for n in args.observables.split(",") if n.strip()]
    if not names:
        raise ValueError("--observables: no observable names given")
    target: Path = args.target
    run_dir: Path | None = None
    if target.is_dir():
        run_dir = target
        samples = target / "samples.parquet"
        if not samples.is_file():
            raise FileNotFoundError(f"run directory {target} holds no samples.parquet")
        if not (target / "result.json").is_file():
            raise FileNotFoundError(
                f"run directory {target} has no result.json (the run is not finished); "
                f"evaluate {samples} directly with --output instead"
            )
        outdir = args.output or target / "evaluation"
    elif target.is_file():
        samples = target
        outdir = args.output or target.with_name(f"{target.stem}_evaluation")
    else:
        raise FileNotFoundError(f"{target} is neither a run directory nor a jet dataset file")
    if not args.reference.exists():
        raise FileNotFoundError(f"--reference: {args.reference} does not exist")

    gen = _load_matrix(samples, names, what=f"samples {samples}")
    ref = _load_matrix(args.reference, names, what=f"reference {args.reference}")
    dropped = {"generated": 0, "reference": 0}
    if args.drop_nonfinite:
        gen, dropped["generated"] = _drop_nonfinite(gen, f"samples {samples}")
        ref, dropped["reference"] = _drop_nonfinite(ref, f"reference {args.reference}")
    gen = swd.check_sample(gen, name=f"samples {samples}", names=names)
    ref = swd.check_sample(ref, name=f"reference {args.reference}", names=names)

    metrics = evaluate(
        gen,
        ref,
        observables=names,
        n_jets=args.n,
        n_bootstraps=args.bootstraps,
        n_projections=args.projections,
        p=args.p,
        seed=args.seed,
        floor=not args.no_floor,
        progress=True,
    )
    record: dict[str, Any] = {
        "samples": str(samples),
        "reference": str(args.reference),
        **metrics,
        "dropped_nonfinite": dropped,
        "code_version": code_version(),
    }
    if args.jetnet:
        from hepscale.metrics import jetnet as jetnet_metrics

        record["jetnet"] = jetnet_metrics.evaluate_datasets(samples, args.reference, seed=args.seed)
    if not args.no_figures:
        files = plot_observables(
            gen,
            ref,
            names,
            outdir,
            label=args.label,
            com=int(args.com) if float(args.com).is_integer() else args.com,
            per_observable=metrics["swd"]["per_observable"],
            p=args.p,
        )
        record["figures"] = [str(f) for f in files]

    if run_dir is not None:
        result_path = run_dir / "result.json"
        try:
            result = json.loads(result_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{result_path} is not valid JSON: {err}") from err
        if not isinstance(result, dict):
            raise ValueError(f"{result_path} does not hold a JSON object")
        result["evaluation"] = record
        atomic_write_json(result_path, result)
        written = result_path
    else:
        written = Path(outdir) / "evaluation.json"
        atomic_write_json(written, record)

    s = metrics["swd"]
    floor = "" if s["floor_mean"] is None else f"  floor {s['floor_mean']:.4g} +- {s['floor_std']:.2g}"
    print(f"SWD ({', '.join(names)}; {s['n_bootstraps']} x {s['n_jets']} jets): {s['mean']:.4g} +- {s['std']:.2g}{floor}")
    for name, w in s["per_observable"].items():
        fl = "" if w["floor_mean"] is None else f"  floor {w['floor_mean']:.4g}"
        print(f"  W_{s['p']:g}({name}) = {w['mean']:.4g} +- {w['std']:.2g}{fl}")
    if "jetnet" in record:
        for key, val in record["jetnet"].items():
            if isinstance(val, dict) and "value" in val:
                print(f"  {key} = {val['value']:.4g} +- {val['error']:.2g}")
    print(f"written: {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
