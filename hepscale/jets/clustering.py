"""Jet clustering of per-event particles with FastJet (scikit-hep awkward interface)."""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

import awkward as ak
import numpy as np

__all__ = ["cluster_jets", "ALGORITHMS"]

ALGORITHMS = ("antikt", "kt", "cambridge")


@contextlib.contextmanager
def _quiet_banner():
    """FastJet prints its banner on the first clustering; keep it out of our output."""
    import sys

    stdout_fd = sys.stdout.fileno() if hasattr(sys.stdout, "fileno") else None
    try:
        saved = os.dup(1)
    except OSError:
        saved = None
    if saved is None or stdout_fd is None:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
        return
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


_BANNER_SHOWN = False


def _jet_definition(algorithm: str, radius: float) -> Any:
    import fastjet

    algos = {"antikt": fastjet.antikt_algorithm, "kt": fastjet.kt_algorithm, "cambridge": fastjet.cambridge_algorithm}
    if algorithm not in algos:
        raise ValueError(f"jet algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    return fastjet.JetDefinition(algos[algorithm], radius)


def cluster_jets(
    particles: ak.Array,
    *,
    radius: float = 0.8,
    algorithm: str = "antikt",
    min_pt: float = 0.0,
) -> ak.Array:
    """Cluster particles into jets; return each jet's constituents.

    Parameters
    ----------
    particles
        Awkward array (n_events, var) of records with ``px, py, pz, E`` (GeV) and any other
        fields (pid, charge, ...), which are carried along to the constituents.
    radius
        Jet radius R.
    min_pt
        Inclusive jets below this pT (GeV) are dropped.

    Returns
    -------
    ak.Array
        Shape (n_events, n_jets, n_constituents) of the input records; jets in descending
        pT in each event.
    """
    global _BANNER_SHOWN
    import fastjet

    vectors = ak.zip({"px": particles.px, "py": particles.py, "pz": particles.pz, "E": particles.E})
    jetdef = _jet_definition(algorithm, radius)
    ctx = _quiet_banner() if not _BANNER_SHOWN else contextlib.nullcontext()
    with ctx:
        cs = fastjet.ClusterSequence(vectors, jetdef)
        jets = cs.inclusive_jets(min_pt=min_pt)
        index = cs.constituent_index(min_pt=min_pt)
    _BANNER_SHOWN = True
    # order jets by descending pT
    order = ak.argsort(np.hypot(jets.px, jets.py), axis=1, ascending=False)
    index = index[order]
    # turn per-event indices into indices into the flat particle list
    counts = ak.to_numpy(ak.num(particles, axis=1))
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    global_index = index + ak.Array(starts)
    flat = ak.flatten(particles, axis=1)
    constituents = flat[ak.flatten(global_index, axis=None)]
    per_jet = ak.flatten(ak.num(index, axis=2), axis=None)
    return ak.unflatten(ak.unflatten(constituents, per_jet), ak.num(index, axis=1))
