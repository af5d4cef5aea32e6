"""Physics metrics of generated jets against a reference jet dataset (library of ``hepscale evaluate``).

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

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hepscale.metrics import swd

if TYPE_CHECKING:
    from hepscale.runs.folder import RunFolder

__all__ = ["evaluate", "evaluate_run", "sampled_with", "evaluated_with"]

logger = logging.getLogger(__name__)


def _load_matrix(path: Path, names: Sequence[str], *, what: str) -> np.ndarray:
    from hepscale.jets.dataset import DatasetError, observable_matrix, read_jets

    try:
        jets = read_jets(path, columns=list(names))
    except DatasetError as err:
        raise ValueError(f"{what}: {err}") from err
    return observable_matrix(jets, names)


def _reference_at(reference: Path, res: Any, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Observables of the reference jets at the model's resolution and raw (same jets, same order)."""
    from hepscale.jets.dataset import DatasetError, observable_matrix
    from hepscale.tasks.generation.resolution import reference_pair

    try:
        raw, decoded = reference_pair(reference, res)
        return observable_matrix(decoded, names), observable_matrix(raw, names)
    except DatasetError as err:
        raise ValueError(f"reference {reference}: {err}") from err


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


def _evaluation_target(target: Path, output: str | os.PathLike[str] | None) -> tuple[RunFolder | None, Path, Path]:
    """``(run, samples, outdir)`` for :func:`evaluate_run`'s ``target``: a finished run folder or a samples file.

    ``run`` is None for a samples file; ``outdir`` is ``output`` if given, else the run's
    ``evaluation/`` or ``<samples stem>_evaluation/`` beside the file.
    """
    from hepscale.runs.folder import RunFolder

    if target.is_dir():
        run = RunFolder(target)
        samples = run.samples
        if not samples.is_file():
            raise FileNotFoundError(f"run directory {target} holds no {RunFolder.SAMPLES}")
        if not run.finished:
            raise FileNotFoundError(
                f"run directory {target} has no {RunFolder.RESULT} (the run is not finished); "
                f"evaluate {samples} directly with --output instead"
            )
        return run, samples, Path(output) if output is not None else run.evaluation_dir
    if target.is_file():
        return None, target, Path(output) if output is not None else target.with_name(f"{target.stem}_evaluation")
    raise FileNotFoundError(f"{target} is neither a run directory nor a jet dataset file")


def _load_matrices(
    samples: Path, reference: Path, res: Any, names: Sequence[str], *, drop_nonfinite: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, int]]:
    """``(generated, reference, raw reference, dropped)`` observable matrices for :func:`evaluate_run`.

    With a resolution ``res`` the reference is taken at the model's resolution and the raw one
    comes beside it (else ``raw`` is None); ``dropped`` counts the jets with NaN/inf values
    removed with ``drop_nonfinite``.
    """
    gen = _load_matrix(samples, names, what=f"samples {samples}")
    raw = None
    if res is not None:  # like with like: the reference at the model's resolution, the raw one beside it
        ref, raw = _reference_at(reference, res, names)
    else:
        ref = _load_matrix(reference, names, what=f"reference {reference}")
    dropped = {"generated": 0, "reference": 0}
    if drop_nonfinite:
        gen, dropped["generated"] = _drop_nonfinite(gen, f"samples {samples}")
        ref, dropped["reference"] = _drop_nonfinite(ref, f"reference {reference}")
        if raw is not None:
            raw, _ = _drop_nonfinite(raw, f"reference {reference} (raw)")
    return gen, ref, raw, dropped


def evaluate_run(
    target: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    *,
    observables: Sequence[str] = swd.DEFAULT_OBSERVABLES,
    n_jets: int = swd.DEFAULT_N_JETS,
    n_bootstraps: int = swd.DEFAULT_N_BOOTSTRAPS,
    n_projections: int = swd.DEFAULT_N_PROJECTIONS,
    p: float = swd.DEFAULT_P,
    seed: int = 0,
    floor: bool = True,
    figures: bool = True,
    output: str | os.PathLike[str] | None = None,
    drop_nonfinite: bool = False,
    jetnet: bool = False,
    label: str = "Simulation",
    com: float = 13.0,
    progress: bool = True,
    resolution: str = "model",
) -> tuple[dict[str, Any], Path]:
    """Evaluate a finished run (its ``samples.parquet``) or a jet dataset file against ``reference``.

    ``resolution="model"`` (default): for a generative run folder, the reference jets are taken at
    the model's resolution (encoded with its tokenizer, truncated and decoded as generated jets
    are, :mod:`hepscale.tasks.generation.resolution`), and the record also holds ``tokenization``: the
    SWD between those and the raw reference jets and the raw floor. ``"raw"``: the raw reference
    (the comparison of earlier versions; a samples file is always compared with it as given).

    For a run folder the record is merged into its ``result.json`` under ``"evaluation"``
    (:meth:`hepscale.runs.folder.RunFolder.merge_result`) and the figures go to its
    ``evaluation/``; for a samples file the record goes to ``output/evaluation.json`` (default:
    ``<samples stem>_evaluation/`` beside it).

    Returns
    -------
    (record, path)
        The evaluation record and the file it was written to.

    Raises
    ------
    FileNotFoundError, ValueError, hepscale.errors.DataError
        On a missing file, an unfinished run, a missing observable or NaN/inf values (unless
        ``drop_nonfinite``).
    """
    from hepscale._io import atomic_write_json
    from hepscale._version import code_version

    names = [n.strip() for n in observables if n.strip()]
    if not names:
        raise ValueError("observables: no observable names given")
    run, samples, outdir = _evaluation_target(Path(target), output)
    reference = Path(reference)
    if not reference.exists():
        raise FileNotFoundError(f"--reference: {reference} does not exist")

    from hepscale.tasks.generation.resolution import run_resolution

    res = run_resolution(run.path) if run is not None and resolution == "model" else None
    gen, ref, raw, dropped = _load_matrices(samples, reference, res, names, drop_nonfinite=drop_nonfinite)
    gen = swd.check_sample(gen, name=f"samples {samples}", names=names)
    ref = swd.check_sample(ref, name=f"reference {reference}", names=names)

    kw = dict(observables=names, n_jets=n_jets, n_bootstraps=n_bootstraps, n_projections=n_projections, p=p,
              seed=seed, progress=progress)
    metrics = evaluate(gen, ref, floor=floor, **kw)
    record: dict[str, Any] = {
        "samples": str(samples),
        "reference": str(reference),
        "reference_resolution": "model" if res is not None else "raw",
        **metrics,
        "dropped_nonfinite": dropped,
        "code_version": code_version(),
    }
    if res is not None and raw is not None:
        # the distance the representation alone causes, and the floor of raw jets
        rep = evaluate(ref, swd.check_sample(raw, name=f"reference {reference} (raw)", names=names),
                       floor=True, **kw)["swd"]
        record["resolution"] = res.record()
        record["tokenization"] = {"mean": rep["mean"], "std": rep["std"], "raw_floor_mean": rep["floor_mean"],
                                  "raw_floor_std": rep["floor_std"],
                                  "per_observable": {k: {"mean": v["mean"], "std": v["std"]}
                                                     for k, v in rep["per_observable"].items()}}
    if jetnet:
        from hepscale.metrics import jetnet as jetnet_metrics

        record["jetnet"] = jetnet_metrics.evaluate_datasets(samples, reference, seed=seed)
    if figures:
        from hepscale.plotting.observables import plot_observables

        files = plot_observables(gen, ref, names, outdir, label=label, com=int(com) if float(com).is_integer() else com,
                                 per_observable=metrics["swd"]["per_observable"], p=p)
        record["figures"] = [str(f) for f in files]
    if run is not None:
        written = run.merge_result("evaluation", record)
    else:
        written = Path(outdir) / "evaluation.json"
        atomic_write_json(written, record)
    return record, written


def sampled_with(run: RunFolder, *, n: int, seed: int) -> bool:
    """True when the run's samples exist with ``n`` jets drawn with ``seed``."""
    from hepscale.jets.dataset import DatasetError, read_metadata

    if not run.samples.is_file():
        return False
    try:
        meta = read_metadata(run.samples)
    except (DatasetError, OSError, ValueError):
        return False
    return meta.get("n") == n and meta.get("seed") == seed


def evaluated_with(run: RunFolder, e: Any) -> bool:
    """True when the run's result holds an SWD with every setting of the study's evaluation
    section ``e`` that changes it: the reference at the model's resolution, the estimator and its
    bins, the resamples, the directions, the seed, and the floor (from pools of one size)."""
    from hepscale.errors import DataError
    from hepscale.metrics.swd import DEFAULT_BINS

    try:
        result = run.read_result()
    except (OSError, DataError):
        return False
    record = result.get("evaluation") or {}
    swd = record.get("swd", {})
    return (record.get("reference_resolution") == "model" and swd.get("method") == "histogram"
            and swd.get("bins") == DEFAULT_BINS and swd.get("n_jets") == e.n
            and swd.get("n_bootstraps") == e.bootstraps and swd.get("n_projections") == e.projections
            and swd.get("seed") == e.seed and (swd.get("floor_mean") is not None) == e.floor
            and (not e.floor or len(swd.get("pool_sizes") or ()) == 3))
