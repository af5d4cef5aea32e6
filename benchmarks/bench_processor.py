"""Benchmark the jet data path: Pythia events/s per core, processor overhead, dask worker scaling.

    python benchmarks/bench_processor.py [--events 2000] [--files 4] [--repeat 3] [--chunksize 1000]

1. Pythia 8 generation rate in one process (events/s per core), per process type.
2. The processor (coffea NanoEvents + JetProcessor on a dask LocalCluster of 1 worker)
   against a bare loop doing the same work on the same files (uproot arrays -> four-vectors
   -> fastjet anti-kT -> selection -> the same observables, truth labels and per-jet weights
   (genWeight) -> one parquet dataset and the weighted histograms as JSON and ROOT), as a
   ratio of events/s. The clusters are started and warmed up (imports, compiled kernels)
   before timing, as in a long production run.
3. The processor on 2 workers against 1 worker.

The three measurements run in turn, ``--repeat`` rounds, so that a change of the machine's
load hits all of them alike; the best time of each is reported, with the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np


def bare_loop(files: list[Path], out_dir: Path, *, pt_min: float = 300.0, eta_max: float = 2.5) -> int:
    """The same work as the processor without coffea or dask; returns the number of jets."""
    import pyarrow.parquet as pq
    import uproot

    from hepscale._io import atomic_path
    from hepscale._version import code_version
    from hepscale.jets._parts import parquet_options
    from hepscale.jets.clustering import cluster_jets
    from hepscale.jets.dataset import build_jets
    from hepscale.jets.histograms import write_histograms
    from hepscale.jets.inputs import event_weights
    from hepscale.jets.truth import truth_labels
    from processors.jets import make_histograms

    all_jets = []
    hists = {}
    for path in files:
        with uproot.open(path) as f:
            a = f["Events"].arrays(["event", "genWeight", "PFCands_pt", "PFCands_eta", "PFCands_phi", "PFCands_mass",
                                    "PFCands_pdgId", "PFCands_charge", "GenPart_pdgId", "GenPart_genPartIdxMother",
                                    "GenPart_eta", "GenPart_phi"])
        pt, eta, phi, mass = a.PFCands_pt, a.PFCands_eta, a.PFCands_phi, a.PFCands_mass
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        cands = ak.zip({"pt": pt, "eta": eta, "phi": phi, "mass": mass, "pid": a.PFCands_pdgId,
                        "charge": a.PFCands_charge, "px": px, "py": py, "pz": pz,
                        "E": np.sqrt(px**2 + py**2 + pz**2 + mass**2)})
        cons = cluster_jets(cands, radius=0.8, min_pt=pt_min)
        jpx, jpy, jpz = ak.sum(cons.px, axis=2), ak.sum(cons.py, axis=2), ak.sum(cons.pz, axis=2)
        jpt = np.hypot(jpx, jpy)
        jeta = np.arcsinh(jpz / ak.where(jpt > 0, jpt, 1e-12))
        jphi = np.arctan2(jpy, jpx)
        sel = (jpt > pt_min) & (abs(jeta) < eta_max) & (ak.num(cons, axis=2) > 0)
        gen = ak.zip({"pdgId": a.GenPart_pdgId, "genPartIdxMother": a.GenPart_genPartIdxMother,
                      "eta": a.GenPart_eta, "phi": a.GenPart_phi})
        labels = truth_labels(jeta[sel], jphi[sel], gen)
        per_event = ak.num(cons[sel], axis=1)
        # simulation without a cross-section: the bare genWeight (as the processor)
        weight = event_weights({"is_data": False}, ak.to_numpy(a.genWeight).astype(np.float64), luminosity=1.0)
        jets = build_jets(ak.flatten(cons[sel], axis=1), label=ak.flatten(labels), source=path.name,
                          event=np.repeat(ak.to_numpy(a.event).astype(np.int64), ak.to_numpy(per_event)),
                          jet_index=ak.flatten(ak.local_index(jpt, axis=1)[sel]),
                          weight=np.repeat(weight, ak.to_numpy(per_event)))
        hists[path.stem] = make_histograms()
        for name, h in hists[path.stem].items():
            h.fill(**{name: ak.to_numpy(jets[name]), "label": ak.to_numpy(jets.label)}, weight=ak.to_numpy(jets.weight))
        all_jets.append(jets)
    # the same outputs as the processor: one jet dataset (written as the processing's merge writes it, see
    # hepscale.jets._parts.parquet_options), the histograms as JSON and ROOT
    jets = ak.concatenate(all_jets)
    table = ak.to_arrow_table(jets, extensionarray=False)
    meta = json.dumps({"code_version": code_version(), "n_jets": len(jets)}).encode()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"hepscale": meta})
    with atomic_path(out_dir / "jets.parquet", suffix=".parquet") as tmp:
        pq.write_table(table, tmp, **parquet_options(table.schema))
    write_histograms(out_dir / "histograms.json", hists)
    with uproot.recreate(out_dir / "histograms.root") as f:
        for ds, hs in hists.items():
            for name, h in hs.items():
                f[f"{ds}/{name}"] = h.project(name)
    return len(jets)


def _warm_worker(path: str) -> None:
    """Run one small chunk where this is called (each worker): imports and compiled kernels, as in a long run."""
    from hepscale.jets.processing import check_file, make_chunks, run_chunk
    from processors.jets import JetProcessor

    assert run_chunk(make_chunks([check_file(path)], chunksize=200)[0], JetProcessor())["status"] == "done"


def _busy_cpus(seconds: float = 1.0) -> float:
    """CPUs busy over ``seconds`` (all processes of the machine, from /proc/stat; 0 where it is missing)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return 0.0
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(total1 - total0, 1))


def wait_quiet(max_wait: float, busy: float = 0.3) -> float:
    """Wait (at most ``max_wait`` s) until other jobs leave the CPUs idle; returns the busy CPUs seen last."""
    deadline = time.monotonic() + max_wait
    load = _busy_cpus()
    while load > busy and time.monotonic() < deadline:
        load = _busy_cpus(2.0)
    return load


def main() -> None:
    from hepscale.events.pythia import GeneratorConfig, generate
    from hepscale.jets.cluster import local_cluster
    from hepscale.jets.dataset import read_jets
    from hepscale.jets.histograms import read_histograms
    from hepscale.jets.processing import process_files
    from processors.jets import JetProcessor

    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000, help="events per file")
    parser.add_argument("--files", type=int, default=4, help="number of files (half ttbar, half QCD)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (the best of each is kept)")
    parser.add_argument("--reuse", default=None, help="folder of already generated files (skips generation)")
    parser.add_argument("--chunksize", type=int, default=1000, help="entries per dask task (default 1000)")
    parser.add_argument("--wait-quiet", type=float, default=120.0,
                        help="before each measurement, wait up to this many seconds for idle CPUs (shared machines)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hepscale-bench-"))
    print(f"working in {tmp}")

    # 1. Pythia rate, one process
    files = sorted(Path(args.reuse).glob("*.root")) if args.reuse else []
    for i in range(0 if files else args.files):
        process = "ttbar" if i % 2 == 0 else "qcd"
        t0 = time.perf_counter()
        files.append(generate(GeneratorConfig(process=process, events=args.events, seed=100 + i), tmp / f"{process}_{i}.root"))
        dt = time.perf_counter() - t0
        print(f"pythia {process}: {args.events / dt:.1f} events/s per core (incl. ROOT writing)")
    import uproot

    n_events = sum(uproot.open(f)["Events"].num_entries for f in files)

    # 2. and 3.: bare loop, processor on 1 worker, on 2 workers, in turn
    def bare_run(r: int) -> int:
        out = tmp / f"bare_{r}"
        out.mkdir()
        return bare_loop(files, out)

    def proc_run(client: Any, name: str, files: list[Path]) -> dict:
        return process_files(files, tmp / name, processor=JetProcessor(), client=client, progress=False, plot=False,
                             chunksize=args.chunksize)

    n_bare = bare_run(-1)  # warms the compiled kernels
    times: dict[str, list[float]] = {"bare": [], "1": [], "2": []}
    busy = []
    for r in range(args.repeat):
        busy.append(wait_quiet(args.wait_quiet))
        t0 = time.perf_counter()
        assert bare_run(r) == n_bare
        times["bare"].append(time.perf_counter() - t0)
        for workers in (1, 2):  # one cluster at a time, as `hepscale process` starts it, warmed up first
            with local_cluster(workers) as client:
                client.run(_warm_worker, str(files[0]))  # every worker, not only those the warm-up run reaches
                proc_run(client, f"warm_{workers}_{r}", files[:1])
                busy.append(wait_quiet(args.wait_quiet))
                t0 = time.perf_counter()
                prov = proc_run(client, f"proc_{workers}_{r}", files)
                times[str(workers)].append(time.perf_counter() - t0)
            assert prov["n_jets"] == n_bare, (prov["n_jets"], n_bare)
        if r == 0:  # the same outputs, value for value
            same = ak.array_equal(read_jets(tmp / "bare_0" / "jets.parquet"), read_jets(tmp / "proc_1_0" / "jets.parquet"))
            hb, hp = (read_histograms(tmp / d / "histograms.json") for d in ("bare_0", "proc_1_0"))
            assert same and hb.keys() == hp.keys() and all(hb[k][n] == hp[k][n] for k in hb for n in hb[k])
        print(f"round {r} (busy CPUs before each: {', '.join(f'{b:.2f}' for b in busy[-3:])}): bare "
              f"{times['bare'][-1]:.2f} s, 1 worker {times['1'][-1]:.2f} s ({times['1'][-1] / times['bare'][-1] - 1:+.1%}), "
              f"2 workers {times['2'][-1]:.2f} s ({times['1'][-1] / times['2'][-1]:.2f}x)", flush=True)
    t_bare, t1, t2 = (min(times[k]) for k in ("bare", "1", "2"))
    overhead = np.median([a / b - 1 for a, b in zip(times["1"], times["bare"])])
    speedup = np.median([a / b for a, b in zip(times["1"], times["2"])])
    print(f"bare uproot+fastjet loop: {n_events / t_bare:.1f} events/s ({n_bare} jets)")
    print(f"processor, 1 worker: {n_events / t1:.1f} events/s; overhead vs bare loop: {t1 / t_bare - 1:+.1%} "
          f"(best times), {overhead:+.1%} (median of the rounds)")
    print(f"processor, 2 workers: {n_events / t2:.1f} events/s; speed-up vs 1 worker: {t1 / t2:.2f}x (best times), "
          f"{speedup:.2f}x (median of the rounds)")


if __name__ == "__main__":
    main()
