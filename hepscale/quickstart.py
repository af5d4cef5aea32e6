"""``hepscale quickstart``: the jet data path end to end on the embedded generator.

Generates boosted ttbar and QCD events with Pythia 8, runs the coffea/fastjet jet processor on
a dask LocalCluster, prints a summary of the jets and their observables by truth label, and
writes CMS-style figures. Re-running reuses what is already there (files are only regenerated
when their settings change), so an interrupted quickstart continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["run_quickstart", "main"]

PROCESSES = ("ttbar", "qcd")


def _generated(path: Path, process: str, events: int, seed: int) -> bool:
    """Whether ``path`` already holds the events these settings would generate."""
    import uproot

    if not path.is_file():
        return False
    try:
        with uproot.open(path) as f:
            prov = json.loads(str(f["hepscale_provenance"]))
    except Exception:  # unreadable or partial file: regenerate it
        return False
    return prov.get("process") == process and prov.get("events") == events and prov.get("seed") == seed


def summary_table(jets: Any) -> str:
    """Jets per truth label and sample with the medians of the observables."""
    import awkward as ak

    from hepscale.dataset import LABEL_NAMES

    cols = ("mass", "msoftdrop", "tau21", "tau32", "d2", "n_constituents")
    header = f"{'sample':<8} {'label':<6} {'jets':>6} " + " ".join(f"{c:>14}" for c in cols)
    lines = [header, "-" * len(header)]
    sources = ak.to_numpy(jets.source).astype(str) if len(jets) else np.array([], dtype=str)
    labels = ak.to_numpy(jets.label)
    for source in sorted(set(sources)):
        for lab in sorted(set(labels[sources == source])):
            sel = (sources == source) & (labels == lab)
            med = [float(np.median(ak.to_numpy(jets[c])[sel])) for c in cols]
            name = LABEL_NAMES.get(int(lab), str(lab))
            lines.append(f"{Path(source).stem:<8} {name:<6} {int(sel.sum()):>6} " + " ".join(f"{m:>14.3f}" for m in med))
    lines.append("(medians; masses in GeV)")
    return "\n".join(lines)


def run_quickstart(output: Path, *, events: int = 2000, seed: int = 1, workers: int = 2, progress: bool = True) -> dict[str, Any]:
    """Generate, process and summarise; returns paths and the summary text."""
    from hepscale.dataset import read_jets
    from hepscale.generate import GeneratorConfig, generate
    from hepscale.process import process_files

    output.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    files = []
    for i, process in enumerate(PROCESSES):
        path = output / "events" / f"{process}.root"
        if _generated(path, process, events, seed + i):
            logger.info("reusing %s", path)
        else:
            generate(GeneratorConfig(process=process, events=events, seed=seed + i), path, jobs=workers, progress=progress)
        files.append(path)
    jets_dir = output / "jets"
    prov = process_files(files, jets_dir, workers=workers, progress=progress)
    jets = read_jets(jets_dir / "jets.parquet")
    return {
        "events": [str(f) for f in files],
        "jets": str(jets_dir / "jets.parquet"),
        "figures": str(jets_dir / "figures"),
        "histograms": str(jets_dir / "histograms.root"),
        "cutflow": prov["cutflow"]["total"],
        "summary": summary_table(jets),
        "seconds": time.perf_counter() - t0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    from hepscale._logging import configure_cli_logging

    parser = argparse.ArgumentParser(prog="hepscale quickstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("hepscale-output/quickstart"),
                        help="output folder (default hepscale-output/quickstart)")
    parser.add_argument("--events", type=int, default=2000, help="events per process (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="processes for generation and dask workers (default 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    args = parser.parse_args(argv)
    configure_cli_logging(args.verbose)
    result = run_quickstart(args.output, events=args.events, seed=args.seed, workers=args.workers,
                            progress=not args.no_progress)
    flow = result["cutflow"]
    print(f"\n{flow['events_read']} events -> {flow['jets_selected']} AK8 jets (pT > 300 GeV, |eta| < 2.5)\n")
    print(result["summary"])
    print(f"\nevents:     {', '.join(result['events'])}")
    print(f"jets:       {result['jets']}")
    print(f"histograms: {result['histograms']}")
    print(f"figures:    {result['figures']}/")
    print(f"done in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
