"""Embedded event generator: Pythia 8 (pp, 13 TeV) to a NanoAOD-like ROOT file.

``hepscale generate --process ttbar --events 1000 --seed 1 --output ttbar.root``

The file has a tree ``Events`` with ``run``, ``luminosityBlock``, ``event``, ``genWeight``,
``PFCands_{pt,eta,phi,mass,pdgId,charge}`` (all visible final-state particles with
|eta| < 5: neutrinos are dropped; particles with c*tau > 10 mm are stable, as at CMS) and
``GenPart_{pt,eta,phi,mass,pdgId,status,genPartIdxMother}`` (the hard-process top quarks,
W, Z and H bosons at their last copy, and their decay partons, for truth labels). Generator
settings, versions and the seed are stored as JSON in the ``TObjString`` ``hepscale_provenance``.

Events are generated in blocks of :data:`BLOCK_SIZE`; block ``b`` is seeded from
``(seed, b)`` alone, so a given seed gives identical events whatever ``--jobs`` is.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["PROCESSES", "GeneratorConfig", "already_generated", "generate", "generate_block", "pythia_settings"]

#: events per independently seeded block
BLOCK_SIZE = 250

#: physics process -> (Pythia settings, default pTHatMin in GeV, description)
PROCESSES: dict[str, tuple[tuple[str, ...], float, str]] = {
    "qcd": (("HardQCD:all = on",), 350.0, "QCD dijets (HardQCD:all)"),
    "ttbar": (
        ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off", "24:onIfAny = 1 2 3 4 5"),
        400.0,
        "all-hadronic ttbar (t -> b W, W -> q q')",
    ),
    "wqq": (
        ("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on", "24:onMode = off",
         "24:onIfAny = 1 2 3 4 5"),
        300.0,
        "W + jet, W -> q q'",
    ),
    "zqq": (
        ("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on", "WeakZ0:gmZmode = 2",
         "23:onMode = off", "23:onIfAny = 1 2 3 4 5"),
        300.0,
        "Z + jet, Z -> q qbar",
    ),
    "hbb": (
        ("HiggsSM:gg2Hg(l:t) = on", "HiggsSM:qg2Hq(l:t) = on", "HiggsSM:qqbar2Hg(l:t) = on", "25:onMode = off",
         "25:onIfMatch = 5 -5"),
        300.0,
        "H + jet, H -> b bbar",
    ),
}
# Default pTHatMin: the decay products of a particle of mass m and pT are contained in a jet of
# radius R when pT > ~2 m / R, i.e. ~430 GeV for top and ~200-310 GeV for W, Z, H with R = 0.8;
# QCD at 350 GeV gives AK8 jets above the 300 GeV selection without wasting events far below it.

COMMON_SETTINGS = (
    "Beams:eCM = 13000.",
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
)

_NEUTRINOS = (12, 14, 16)
_BOSONS = (6, 23, 24, 25)
_ETA_MAX = 5.0


@dataclass
class GeneratorConfig:
    """Settings of one generation job (stored in the output file)."""

    process: str = "qcd"
    events: int = 1000
    seed: int = 1
    pthat_min: float | None = None
    extra_settings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.process not in PROCESSES:
            raise ValueError(f"process must be one of {sorted(PROCESSES)}, got {self.process!r}")
        if self.events < 1:
            raise ValueError(f"events must be at least 1, got {self.events}")
        if not 0 <= self.seed <= 900_000_000:
            raise ValueError(f"seed must be in [0, 900000000] (Pythia's range), got {self.seed}")

    @property
    def pthat(self) -> float:
        return PROCESSES[self.process][1] if self.pthat_min is None else float(self.pthat_min)


def _physics_settings(config: GeneratorConfig) -> list[str]:
    """The settings that fix the physics of a job (everything but the seeds and the extra settings)."""
    return [
        "Print:quiet = on",
        *COMMON_SETTINGS,
        *PROCESSES[config.process][0],
        f"PhaseSpace:pTHatMin = {config.pthat:g}",
        "Random:setSeed = on",
    ]


def pythia_settings(config: GeneratorConfig, block_seed: int) -> list[str]:
    """The full list of Pythia ``readString`` settings for one block."""
    return [*_physics_settings(config), f"Random:seed = {block_seed}", *config.extra_settings]


def block_seeds(seed: int, n_blocks: int) -> list[int]:
    """Independent Pythia seeds (1 .. 9e8) for each block, from ``seed`` alone."""
    ss = np.random.SeedSequence(seed)
    states = ss.generate_state(n_blocks, dtype=np.uint64)
    return [int(s % 900_000_000) + 1 for s in states]


def _truth_partons(ids: np.ndarray, status: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> list[tuple[int, int, int]]:
    """Hard-process resonances (last copies) and their decay partons in one event.

    Returns ``(particle index, pythia status, index of the mother in this list or -1)``.
    """
    n = len(ids)
    out: list[tuple[int, int, int]] = []
    seen: dict[int, int] = {}

    def last_copy(i: int) -> int:
        while 0 < d1[i] < n and d1[i] == d2[i] and ids[d1[i]] == ids[i]:
            i = int(d1[i])
        # Pythia also marks a recoil copy with daughter1 == daughter2 == 0 or with the copy
        # as first daughter of a range; follow copies of the same id
        while 0 < d1[i] < n and ids[d1[i]] == ids[i]:
            i = int(d1[i])
        return i

    def add(i: int, mother: int) -> int:
        if i in seen:
            return seen[i]
        out.append((i, int(status[i]), mother))
        seen[i] = len(out) - 1
        return seen[i]

    for i in range(n):
        if abs(ids[i]) not in _BOSONS or status[i] not in (-22, -23):  # hard-process resonance / outgoing
            continue
        last = last_copy(i)
        me = add(last, -1)
        lo, hi = int(d1[last]), int(d2[last])
        if lo <= 0:
            continue
        for d in range(lo, max(hi, lo) + 1):
            if d >= n:
                break
            a = abs(ids[d])
            if a in (24, 23, 25):  # t -> b W: follow the W to its decay
                wl = last_copy(d)
                wi = add(wl, me)
                for q in range(int(d1[wl]), max(int(d2[wl]), int(d1[wl])) + 1):
                    if 0 < q < n and abs(ids[q]) <= 5:
                        add(q, wi)
            elif a <= 5:
                add(d, me)
    return out


def generate_block(config: GeneratorConfig, block: int, n_events: int, block_seed: int) -> dict[str, Any]:
    """Generate one block of events; returns flat numpy arrays with per-event counts."""
    import awkward as ak
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for setting in pythia_settings(config, block_seed):
        if not pythia.readString(setting):
            raise ValueError(f"Pythia rejected the setting {setting!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise for process {config.process!r} (block {block})")
    batch = pythia.nextBatch(n_events)
    if len(batch) != n_events:
        raise RuntimeError(f"Pythia returned {len(batch)} events of {n_events} requested (block {block})")
    prt = batch.prt
    counts = ak.to_numpy(ak.num(prt, axis=1))
    ids = ak.to_numpy(ak.flatten(prt.id)).astype(np.int32)
    status = ak.to_numpy(ak.flatten(prt.status)).astype(np.int32)
    d1 = ak.to_numpy(ak.flatten(prt.daughter1)).astype(np.int64)
    d2 = ak.to_numpy(ak.flatten(prt.daughter2)).astype(np.int64)
    px = ak.to_numpy(ak.flatten(prt.p.px))
    py = ak.to_numpy(ak.flatten(prt.p.py))
    pz = ak.to_numpy(ak.flatten(prt.p.pz))
    mass = ak.to_numpy(ak.flatten(prt.m))
    weights = ak.to_numpy(ak.firsts(batch.info.weights))
    charges = {int(i): float(pythia.particleData.charge(int(i))) for i in np.unique(ids)}

    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / np.where(pt > 0, pt, 1.0), np.sign(pz) * 1e10))
    phi = np.arctan2(py, px)
    final = (status > 0) & ~np.isin(np.abs(ids), _NEUTRINOS) & (np.abs(eta) < _ETA_MAX) & (pt > 0)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    event_of = np.repeat(np.arange(len(counts)), counts)
    pf_counts = np.bincount(event_of[final], minlength=len(counts))
    pf = {
        "pt": pt[final].astype(np.float32),
        "eta": eta[final].astype(np.float32),
        "phi": phi[final].astype(np.float32),
        "mass": mass[final].astype(np.float32),
        "pdgId": ids[final],
        "charge": np.array([charges[int(i)] for i in ids[final]], dtype=np.int32),
    }
    gen_rows: list[int] = []
    gen_status: list[int] = []
    gen_mother: list[int] = []
    gen_counts = np.zeros(len(counts), dtype=np.int64)
    for ev in range(len(counts)):
        lo, hi = offsets[ev], offsets[ev + 1]
        found = _truth_partons(ids[lo:hi], status[lo:hi], d1[lo:hi], d2[lo:hi])
        gen_counts[ev] = len(found)
        for idx, st, mo in found:
            gen_rows.append(lo + idx)
            gen_status.append(st)
            gen_mother.append(mo)
    rows = np.asarray(gen_rows, dtype=np.int64)
    gen = {
        "pt": pt[rows].astype(np.float32),
        "eta": eta[rows].astype(np.float32),
        "phi": phi[rows].astype(np.float32),
        "mass": mass[rows].astype(np.float32),
        "pdgId": ids[rows],
        "status": np.asarray(gen_status, dtype=np.int32),
        "genPartIdxMother": np.asarray(gen_mother, dtype=np.int32),
    }
    return {
        "block": block,
        "n_events": n_events,
        "genWeight": weights.astype(np.float32),
        "pf_counts": pf_counts,
        "pf": pf,
        "gen_counts": gen_counts,
        "gen": gen,
    }


def _assemble(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    import awkward as ak

    blocks = sorted(blocks, key=lambda b: b["block"])
    n_per = [b["n_events"] for b in blocks]
    event = np.arange(1, sum(n_per) + 1, dtype=np.uint64)
    lumi = np.concatenate([np.full(n, b["block"] + 1, dtype=np.uint32) for n, b in zip(n_per, blocks)])

    def jagged(kind: str) -> ak.Array:
        counts = np.concatenate([b[f"{kind}_counts"] for b in blocks])
        fields = {k: np.concatenate([b[kind][k] for b in blocks]) for k in blocks[0][kind]}
        return ak.unflatten(ak.zip(fields), counts)

    return {
        "run": np.ones(len(event), dtype=np.uint32),
        "luminosityBlock": lumi,
        "event": event,
        "genWeight": np.concatenate([b["genWeight"] for b in blocks]),
        "PFCands": jagged("pf"),
        "GenPart": jagged("gen"),
    }


def _provenance(config: GeneratorConfig, seeds: list[int]) -> dict[str, Any]:
    from importlib import metadata

    from hepscale._version import code_version

    return {
        "generator": "Pythia 8",
        "pythia8mc_version": metadata.version("pythia8mc"),
        "process": config.process,
        "process_description": PROCESSES[config.process][2],
        "events": config.events,
        "seed": config.seed,
        "block_size": BLOCK_SIZE,
        "block_seeds": seeds,
        "settings": [*_physics_settings(config), *config.extra_settings],
        "pthat_min_gev": config.pthat,
        "sqrt_s_tev": 13.0,
        "code_version": code_version(),
    }


def write_nanoaod(path: str | os.PathLike[str], events: dict[str, Any], provenance: dict[str, Any]) -> Path:
    """Write assembled events as a NanoAOD-like ROOT file (atomically)."""
    import uproot

    from hepscale._io import atomic_path

    out = Path(path)
    with atomic_path(out, suffix=".root") as tmp:
        with uproot.recreate(tmp) as f:
            f.mktree("Events", events, title="Events")
            f["hepscale_provenance"] = json.dumps(provenance, sort_keys=True)
    return out


def generate(
    config: GeneratorConfig,
    output: str | os.PathLike[str],
    *,
    jobs: int = 1,
    progress: bool = False,
) -> Path:
    """Generate ``config.events`` events and write them to ``output`` (ROOT).

    Parameters
    ----------
    jobs
        Worker processes; blocks of :data:`BLOCK_SIZE` events are distributed over them.
        The events do not depend on ``jobs``.
    progress
        Show a progress bar (events).
    """
    from tqdm.auto import tqdm

    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    n_blocks = -(-config.events // BLOCK_SIZE)
    sizes = [min(BLOCK_SIZE, config.events - b * BLOCK_SIZE) for b in range(n_blocks)]
    seeds = block_seeds(config.seed, n_blocks)
    blocks: list[dict[str, Any]] = []
    bar = tqdm(total=config.events, unit="ev", desc=f"generate {config.process}", disable=not progress)
    try:
        if jobs == 1 or n_blocks == 1:
            for b in range(n_blocks):
                blocks.append(generate_block(config, b, sizes[b], seeds[b]))
                bar.update(sizes[b])
        else:
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=min(jobs, n_blocks), mp_context=ctx) as pool:
                futures = {pool.submit(generate_block, config, b, sizes[b], seeds[b]): b for b in range(n_blocks)}
                for fut in cf.as_completed(futures):
                    blocks.append(fut.result())
                    bar.update(sizes[futures[fut]])
    finally:
        bar.close()
    events = _assemble(blocks)
    path = write_nanoaod(output, events, _provenance(config, seeds))
    logger.info("wrote %d %s events to %s", config.events, config.process, path)
    return path


def already_generated(path: str | os.PathLike[str], config: GeneratorConfig) -> bool:
    """Whether ``path`` already holds the events ``config`` would generate (from its provenance)."""
    import uproot

    p = Path(path)
    if not p.is_file():
        return False
    try:
        with uproot.open(p) as f:
            prov = json.loads(str(f["hepscale_provenance"]))
    except Exception:  # unreadable or partial file: regenerate it
        return False
    return all(prov.get(k) == v for k, v in (("process", config.process), ("events", config.events),
                                              ("seed", config.seed), ("pthat_min_gev", config.pthat)))
