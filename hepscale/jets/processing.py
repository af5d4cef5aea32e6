"""``hepscale process``: run the jet processor on dask over ROOT files -> jet dataset.

``hepscale process ttbar.root qcd.root --output jets/ --workers 2``

The inputs (files, ``root://`` and ``https://`` URLs, coffea filesets) are checked first and cut
into chunks of entries (:mod:`hepscale.jets.inputs`), and every chunk runs
the jet processor (the command layer passes :class:`processors.jets.JetProcessor`) on a dask worker (a ``LocalCluster`` by default, or an
existing scheduler with ``--scheduler``). A worker writes nothing: each chunk's jets (Arrow IPC
bytes) and accumulator come back through dask, so that workers need no filesystem shared with
the client (HTCondor). The client keeps them under ``OUTPUT/.parts/`` (Arrow and JSON, see
:mod:`hepscale.jets._parts`) so that an interrupted run resumes where it stopped: a chunk is
reused only for the same input file, entry range, processor settings and code version. They
are merged, in input order while the workers run, into:

- ``jets.parquet``: the jet dataset (:mod:`hepscale.jets.dataset`), provenance in its metadata;
  a chunk without selected jets adds no rows but is counted in the cutflow;
- ``histograms.json`` (``{dataset: {observable: hist.Hist}}`` with a truth-label axis, read
  back with :func:`hepscale.jets.histograms.read_histograms`) and ``histograms.root`` (the
  same, summed over labels, for ROOT users);
- ``cutflow.json`` (per dataset and in total; every event read is either selected or
  rejected), ``provenance.json`` (inputs, entries, configuration, skipped files with the
  reason, code version), and ``figures/<observable>.pdf/png`` (CMS style).

A file that cannot be read, or that holds non-finite PF candidate kinematics or
``genWeight``, is an error naming the file and branch; with ``--skip-bad-files`` it is
skipped and listed with its reason under ``skipped_files`` in the provenance (and left out
of ``inputs``, so that the entries of ``inputs`` add up to the events read of the cutflow). The
same file given twice (the same resolved path) is an error naming it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hepscale.jets._parts import (
    StreamingMerge,
    check_part,
    encode_jets,
    part_key,
    remove_part,
    remove_stale_parts,
    settings_key,
    store_part,
)
from hepscale.jets.inputs import (  # noqa: F401  (re-exported: the processing API)
    PFCANDS_OPTIONAL_FIELDS,
    Chunk,
    FileCheck,
    InputFile,
    ProcessingError,
    check_file,
    make_chunks,
    open_events,
    prepare_inputs,
    quiet_schema,
)

logger = logging.getLogger(__name__)

__all__ = ["Chunk", "FileCheck", "InputFile", "ProcessingError", "check_file", "make_chunks", "open_events",
           "run_chunk", "process_files", "store_result"]


def run_chunk(chunk: Chunk, processor: Any, *, settings: str | None = None) -> dict[str, Any]:
    """Process one chunk on a worker and return its result; nothing is written.

    ``settings``: the hash of the processor class, settings and code version
    (:func:`hepscale.jets._parts.settings_key`; computed here when None). Returns
    ``{"key", "status": "done", "path", "n_jets", "table", "acc", "seconds"}`` with the jets as Arrow
    IPC bytes (``table``) and the accumulator (``acc``: ``cutflow`` and ``hists``). Exceptions are
    caught and returned as ``status: "error"`` with the file name, so that the caller decides
    whether to stop or skip the file.
    """
    key = part_key(chunk, settings if settings is not None else settings_key(processor))
    start = time.perf_counter()
    try:
        with quiet_schema():
            events = open_events(chunk)
            out = processor.process(events)[chunk.dataset]
        jets = out.pop("jets")
        table = encode_jets(jets, {"chunk": asdict(chunk), "part_key": key})
        acc = {"cutflow": {k: int(v) for k, v in out["cutflow"].items()}, "hists": out["hists"]}
    except Exception as err:  # reported to the caller with the file name
        return {"key": key, "status": "error", "path": chunk.path,
                "error": f"{chunk.path} (entries {chunk.start}-{chunk.stop}): {type(err).__name__}: {err}"}
    return {"key": key, "status": "done", "path": chunk.path, "n_jets": len(jets), "table": table, "acc": acc,
            "seconds": time.perf_counter() - start}


def store_result(parts_dir: str | os.PathLike[str], result: dict[str, Any]) -> None:
    """Keep a finished :func:`run_chunk` result under ``parts_dir`` (on the client), for the merge and for resume."""
    store_part(Path(parts_dir), result["key"], table=result["table"], n_jets=result["n_jets"], acc=result["acc"])


def _make_output_dir(out_dir: Path) -> Path:
    """Create ``out_dir/.parts``; an output path that is a file (or under one) is an error naming it."""
    for parent in (out_dir, *out_dir.parents):
        if parent.exists() and not parent.is_dir():
            what = "is" if parent == out_dir else f"is under {parent}, which is"
            raise ProcessingError(f"output folder {out_dir} {what} an existing file, not a folder; "
                                  "give a new folder or the folder of an earlier run")
    parts_dir = out_dir / ".parts"
    try:
        parts_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ProcessingError(f"cannot create the output folder {out_dir} ({err.strerror or err})") from err
    return parts_dir


def process_files(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    processor: Any,
    workers: int = 2,
    client: Any = None,
    client_factory: Callable[[], AbstractContextManager[Any]] | None = None,
    skip_bad_files: bool = False,
    chunksize: int = 5000,
    max_chunks: int | None = None,
    progress: bool = True,
    plot: bool = True,
) -> dict[str, Any]:
    """Run the jet processor over ``inputs`` and write the jet dataset into ``output``.

    Parameters
    ----------
    inputs
        ROOT files, each once (the same resolved path twice is an error).
    processor
        A picklable coffea processor with a ``config`` attribute (a
        :class:`hepscale.jets.config.JetProcessorConfig`), e.g. ``processors.jets.JetProcessor(config)``;
        ``process(events)`` returns ``{dataset: {"jets": ..., "hists": ..., "cutflow": ...}}``.
    workers
        Worker processes of the local dask cluster (without ``client`` or ``client_factory``).
    client
        An existing ``dask.distributed.Client`` to use.
    client_factory
        Makes a context manager yielding the client, once the inputs are checked (e.g.
        :func:`hepscale.condor.dask.dask_client` for an existing scheduler or HTCondor workers
        of a site profile); default: a local cluster of ``workers`` processes.
    skip_bad_files
        Skip unreadable files (recorded in the provenance) instead of stopping.

    Returns
    -------
    dict
        The provenance record (also written to ``output/provenance.json``).

    Raises
    ------
    ProcessingError
        A bad input file (without ``skip_bad_files``), a file given twice, an output path that
        is a file, or no usable input at all.
    """
    from dask.distributed import as_completed
    from tqdm.auto import tqdm

    from hepscale._io import atomic_path
    from hepscale._version import code_version
    from hepscale.config import to_dict
    from hepscale.jets.cluster import local_cluster
    config = processor.config
    plan = prepare_inputs(inputs, constituents=config.constituents, skip_bad_files=skip_bad_files,
                          chunksize=chunksize, max_chunks=max_chunks)
    out_dir = Path(output)
    parts_dir = _make_output_dir(out_dir)
    checks, chunks, skipped, fields = plan.checks, plan.chunks, plan.skipped, plan.fields
    settings = settings_key(processor)
    keys = {c.key: part_key(c, settings) for c in chunks}
    remove_stale_parts(parts_dir, list(keys.values()))  # parts of other settings are never merged
    cached, todo = [], []
    for c in chunks:
        reusable, damaged = check_part(parts_dir, keys[c.key])
        if damaged:
            logger.warning("redoing chunk %s: its cached part was damaged (%s)", keys[c.key], damaged)
            remove_part(parts_dir, keys[c.key])
        (cached if reusable else todo).append(c)
    total = sum(c.stop - c.start for c in chunks)
    seconds = 0.0
    if client is not None:
        ctx: AbstractContextManager[Any] = contextlib.nullcontext(client)
    else:
        ctx = client_factory() if client_factory is not None else local_cluster(workers)
    with ctx as cl, atomic_path(out_dir / "jets.parquet", suffix=".parquet") as jets_tmp:
        merge = StreamingMerge(chunks, parts_dir, jets_tmp, fields, keys, whole_files=skip_bad_files)
        run_id = uuid.uuid4().hex[:8]  # keys unique per run: a cancelled earlier run must not shadow this one
        futures = {cl.submit(run_chunk, c, processor, settings=settings, key=f"hepscale-chunk-{c.key}-{run_id}",
                             pure=False): c for c in todo}
        bar = tqdm(total=total, unit="ev", desc="process", disable=not progress)
        try:
            for c in cached:  # merged while the workers start on the others
                bar.update(c.stop - c.start)
                merge.chunk_done(c)
            for fut in as_completed(list(futures)):
                chunk = futures.pop(fut)  # dropping the future frees the result on the worker
                res = fut.result()
                bar.update(chunk.stop - chunk.start)
                if res["status"] == "error":
                    if not skip_bad_files:
                        for other in futures:
                            other.cancel()
                        raise ProcessingError(res["error"] + " (use --skip-bad-files to skip such files)")
                    skipped.setdefault(chunk.path, res["error"])
                    logger.warning("skipping %s", res["error"])
                    merge.file_bad(chunk.path)
                else:
                    seconds += res["seconds"]
                    store_result(parts_dir, res)
                    merge.chunk_done(chunk, res["acc"])
                del fut, res
        finally:
            bar.close()
        chunk_info = {
            "total": len(chunks),
            "cached": len(cached),
            "chunksize": chunksize,
            "task_seconds": round(seconds, 3),
        }
        provenance, hists = _summarize(merge.totals, checks, skipped, chunk_info)
        if fields is not None:
            provenance["constituent_fields"] = fields
        provenance["config"] = to_dict(config)
        provenance["code_version"] = code_version()
        merge.close(provenance)
    _write_outputs(out_dir, provenance, hists, plot=plot)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return provenance


def _summarize(totals: dict[str, dict[str, Any]], checks: Sequence[FileCheck], skipped: dict[str, str],
               chunk_info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The provenance record of the merged accumulators (``{dataset: {"cutflow", "hists"}}``).

    ``inputs`` lists the files that were processed to the end (a file skipped mid-way is only
    under ``skipped_files``), so that ``entries`` equals the cutflow's ``events_read``.
    """
    cutflow = {ds: dict(acc["cutflow"]) for ds, acc in totals.items()}
    total_cutflow: dict[str, int] = {}
    for flow in cutflow.values():
        for k, v in flow.items():
            total_cutflow[k] = total_cutflow.get(k, 0) + int(v)
    inputs = [c.record() for c in checks if c.error is None and c.path not in skipped]
    provenance: dict[str, Any] = {
        "inputs": inputs,
        "entries": sum(i["entries"] for i in inputs),
        "skipped_files": [{"path": p, "reason": r} for p, r in skipped.items()],
        "cutflow": {"total": total_cutflow, **cutflow},
        "n_jets": total_cutflow.get("jets_selected", 0),
        "chunks": chunk_info,
    }
    return provenance, {ds: acc["hists"] for ds, acc in totals.items()}


def _write_outputs(out_dir: Path, provenance: dict[str, Any], hists: dict[str, Any], *, plot: bool) -> None:
    from hepscale._io import atomic_write_json
    from hepscale.jets.histograms import write_histograms

    atomic_write_json(out_dir / "cutflow.json", provenance["cutflow"])
    write_histograms(out_dir / "histograms.json", hists)
    stale = out_dir / "histograms.pkl"  # written by earlier versions; it would not match this run
    if stale.is_file():
        stale.unlink()
    _write_root_histograms(out_dir / "histograms.root", hists)
    if plot:
        from hepscale.jets.dataset import LABEL_NAMES
        from hepscale.plotting.observables import plot_histograms_by_label

        plot_histograms_by_label(hists, out_dir / "figures", label_names=LABEL_NAMES)
    atomic_write_json(out_dir / "provenance.json", provenance)


def _write_root_histograms(path: Path, hists: dict[str, dict[str, Any]]) -> None:
    import uproot

    from hepscale._io import atomic_path

    with atomic_path(path, suffix=".root") as tmp, uproot.recreate(tmp) as f:
        for ds, hs in hists.items():
            for name, h in hs.items():
                f[f"{ds}/{name}"] = h.project(name)
