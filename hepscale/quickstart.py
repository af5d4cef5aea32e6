"""``hepscale quickstart``: a small scaling study, from nothing, on 2 CPU cores.

By default (``--study generation``) it runs ``configs/studies/generation_phase1_cpu.yaml`` with
the local executor: Pythia 8 ttbar and QCD events, AK8 jets with the coffea/fastjet processor on
dask, tokens, six GPT sizes (Pico ... M: 2.15 orders of magnitude in non-embedding parameters)
trained with the study's optimizer (Ranger, learning rates scanned for this budget), samples, SWD with its floor, the fits of loss vs N and of SWD vs loss, figures and a
summary table.

``--study tagging`` runs ``configs/studies/tagging_cpu.yaml``: the same Pythia 8 events, top vs
QCD jets split by truth label (train / validation / test, balanced), particle-transformer taggers
over model size, jet budget and input feature set, their test-split AUC and background rejection,
the fit of loss vs jets seen, the rejection-vs-loss relation, figures and a summary table.

Both are resumable: a re-run continues where an interrupted one stopped.

``--jets-only`` runs just the jet data path (generate -> process -> observables by truth label,
CMS-style figures) in about a minute.

The study config and its training config are read from ``configs/`` of the working directory
where they are there, else from the copies shipped with hepscale
(:func:`hepscale.resources.project_file`), so the quickstart runs from any folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hepscale.cli import configure_logging, run_tool
from hepscale.resources import project_file
from hepscale.tasks import DEFAULT_TASK

logger = logging.getLogger(__name__)

__all__ = ["PROCESSES", "QUICKSTART_STUDIES", "QUICKSTART_STUDY", "main", "run_quickstart", "run_quickstart_study", "summary_table"]

PROCESSES = ("ttbar", "qcd")


def summary_table(jets: Any) -> str:
    """Jets per truth label and sample with the medians of the observables."""
    import awkward as ak

    from hepscale.jets.dataset import LABEL_NAMES

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


def run_quickstart(
    output: Path,
    *,
    processor_factory: Callable[[], Any],
    events: int = 2000,
    seed: int = 1,
    workers: int = 2,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate, process and summarise; returns paths and the summary text.

    Parameters
    ----------
    processor_factory
        Builds the coffea processor (the command passes ``processors.jets.JetProcessor``).
    events
        Events per process.
    """
    from hepscale.events.pythia import GeneratorConfig, already_generated, generate
    from hepscale.jets.dataset import read_jets
    from hepscale.jets.processing import process_files

    output.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    files = []
    for i, process in enumerate(PROCESSES):
        path = output / "events" / f"{process}.root"
        config = GeneratorConfig(process=process, events=events, seed=seed + i)
        if already_generated(path, config):
            logger.info("reusing %s", path)
        else:
            generate(config, path, jobs=workers, progress=progress)
        files.append(path)
    jets_dir = output / "jets"
    prov = process_files(files, jets_dir, processor=processor_factory(), workers=workers, progress=progress)
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


def quickstart_studies() -> dict[str, Path]:
    """The studies the quickstart runs (``--study``): each registered task's quickstart study
    (:attr:`hepscale.tasks.spec.TaskSpec.quickstart`), relative to the project root."""
    from hepscale.tasks import all_specs

    return {name: spec.quickstart for name, spec in all_specs().items() if spec.quickstart is not None}


#: the studies of the built-in tasks (see :func:`quickstart_studies`)
QUICKSTART_STUDIES: dict[str, Path] = quickstart_studies()
#: the default study of the quickstart: the default task's
QUICKSTART_STUDY = QUICKSTART_STUDIES[DEFAULT_TASK]


def run_quickstart_study(
    output: Path, *, processor_factory: Callable[[], Any], jobs: int = 2, progress: bool = True,
    study: str = DEFAULT_TASK,
) -> dict[str, Any]:
    """Run a CPU study (a key of :data:`QUICKSTART_STUDIES`) into ``output``; returns
    :func:`hepscale.study.run_study`'s record.

    The study config and its training config come from the working directory, else from the
    package (:func:`hepscale.resources.project_file`).
    """
    from hepscale.study import load_study, run_study

    studies = quickstart_studies()
    if study not in studies:
        raise ValueError(f"unknown quickstart study {study!r}; expected one of {', '.join(studies)}")
    config = load_study(project_file(studies[study]))
    train_config = project_file(config.train.config)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, config=str(train_config)))
    return run_study(config, jobs=jobs, progress=progress, output=output, processor_factory=processor_factory)


def main(argv: Sequence[str] | None = None) -> int:
    """``hepscale quickstart``: a CPU study (generation or tagging), or with ``--jets-only`` the jet data path."""
    parser = argparse.ArgumentParser(prog="hepscale quickstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", choices=tuple(quickstart_studies()), default=DEFAULT_TASK,
                        help="which study: generation (jet generation, about 15 min) or tagging (top vs QCD "
                             "tagging, under 10 min); default generation")
    parser.add_argument("--output", type=Path, default=None,
                        help="output folder (default hepscale-output/quickstart, hepscale-output/quickstart-tagging "
                             "with --study tagging, or .../quickstart-jets with --jets-only)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="runs (and dask workers) at once (default 2)")
    parser.add_argument("--jets-only", action="store_true", help="only the jet data path (about a minute)")
    parser.add_argument("--events", type=int, default=2000, help="--jets-only: events per process (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="--jets-only: random seed (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="--jets-only: processes for generation and dask workers")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    args = parser.parse_args(argv)
    configure_logging(args.verbose, dask=True)
    return run_tool(parser.prog, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    """The body of :func:`main` (errors are mapped to exit codes by :func:`hepscale.cli.run_tool`)."""
    from processors.jets import (
        JetProcessor,  # the command layer passes the processor in
    )

    if not args.jets_only:
        from hepscale.study import print_summary

        default = "hepscale-output/quickstart" + ("" if args.study == DEFAULT_TASK else f"-{args.study}")
        out = run_quickstart_study(args.output or Path(default), processor_factory=JetProcessor,
                                   jobs=args.jobs, progress=not args.no_progress, study=args.study)
        print_summary(out)
        return 1 if out["failed"] or out["interrupted"] else 0
    output = args.output or Path("hepscale-output/quickstart-jets")
    result = run_quickstart(output, processor_factory=JetProcessor, events=args.events, seed=args.seed,
                            workers=args.workers, progress=not args.no_progress)
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
