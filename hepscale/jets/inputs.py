"""The inputs of ``hepscale process``: files, URLs and coffea filesets -> checked files -> chunks.

Inputs are local ROOT files, ``root://`` URLs (XRootD, through ``fsspec-xrootd``) and
``https://`` URLs, given on the command line (one dataset per file, named after the file) or
as a coffea fileset JSON (the form of ``coffea.dataset_tools``)::

    {"QCD_Pt_1400to1800": {"files": {"root://eos.cms.cern.ch//store/.../nano_1.root": "Events"},
                           "metadata": {"xsec": 0.3, "isData": false}}}

A file's tree is the value under ``files`` (a tree name, or a mapping with ``object_path`` as
coffea's preprocessed filesets have); a relative local path is relative to the fileset file's
folder. Everything under ``metadata`` is carried to every chunk of the dataset (``events.metadata``
in the processor) and recorded in the provenance.

Each file is checked once before any work (:func:`check_file`): readable, the tree there, the
branches of one of the PF-candidate layouts (:data:`LAYOUTS`), and for simulation the sum of
generator weights of the ``Runs`` tree. :func:`prepare_inputs` checks every file, refuses or
skips (``skip_bad_files``) the bad ones with a message naming the file or URL, and cuts the
rest into chunks (:func:`make_chunks`).

Event weights: the chunks of a simulated dataset carry ``sumw``, the sum of ``genEventSumw``
of the ``Runs`` trees of all its files (of ``genWeight`` for files without one), so that the
processor weights each jet by ``genWeight * xsec * lumi / sumw`` (:func:`event_weights`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepscale.errors import DataError, HepscaleError

logger = logging.getLogger(__name__)

__all__ = ["Chunk", "FileCheck", "InputFile", "InputPlan", "ProcessingError", "LAYOUTS", "check_file",
           "event_weights", "is_fileset", "is_remote", "make_chunks", "open_events", "prepare_inputs", "read_fileset"]

#: the PF-candidate layouts a file may have, as named in the provenance
LAYOUTS = {
    "pfcands": "PF candidates (PFCands_*) only",
    "pfnano": "PFNano: PFCands_* with the AK8 constituents indexed by FatJetPFCands_{jetIdx,pFCandsIdx}",
    "pfnano-stored": "older PFNano: the AK8 constituents stored in FatJetPFCands_{pt,eta,phi,mass,...,jetIdx}",
}
#: kinematic branches of PF candidates (``PFCands_<name>``, or ``FatJetPFCands_<name>`` in the older PFNano)
KINEMATICS = ("pt", "eta", "phi", "mass")
REQUIRED_BRANCHES = tuple(f"PFCands_{k}" for k in KINEMATICS)
PFNANO_BRANCHES = ("FatJetPFCands_jetIdx", "FatJetPFCands_pFCandsIdx")
STORED_BRANCHES = (*(f"FatJetPFCands_{k}" for k in KINEMATICS), "FatJetPFCands_jetIdx")
#: PF candidate field (branch suffix, cm) of each optional constituent field of the jet dataset
#: (:data:`hepscale.jets.dataset.OPTIONAL_CONSTITUENT_FIELDS`, in that order)
PFCANDS_OPTIONAL_FIELDS = {"d0": "d0", "dz": "dz", "d0err": "d0Err", "dzerr": "dzErr"}
#: the collection holding the constituents' kinematics in each layout
CANDIDATES = {"pfcands": "PFCands", "pfnano": "PFCands", "pfnano-stored": "FatJetPFCands"}
#: schemes read through fsspec (XRootD through fsspec-xrootd, HTTP through aiohttp)
REMOTE_SCHEMES = ("root://", "xroot://", "http://", "https://")
#: seconds to wait for a remote server
REMOTE_TIMEOUT = 30


class ProcessingError(HepscaleError, RuntimeError):
    """An input file could not be processed (the message names the file and the reason)."""


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL read over the network (``root://``, ``https://``)."""
    return path.lower().startswith(REMOTE_SCHEMES)


@dataclass(frozen=True)
class InputFile:
    """One input: a path or URL, its tree, its dataset (None: named after the file) and the dataset's metadata."""

    path: str
    tree: str = "Events"
    dataset: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class FileCheck:
    """Result of checking one input file (``error`` is None for a usable file)."""

    path: str
    entries: int = 0
    schema: str = "NanoAODSchema"
    error: str | None = None
    optional_fields: tuple[str, ...] = ()
    tree: str = "Events"
    dataset: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    layout: str = "pfcands"
    is_data: bool = False
    sumw: float | None = None
    sumw_from: str | None = None
    key: str = ""

    def record(self) -> dict[str, Any]:
        """The file's entry under ``inputs`` in the provenance."""
        rec = {"path": self.path, "tree": self.tree, "dataset": self.dataset, "entries": self.entries,
               "schema": self.schema, "layout": self.layout, "is_data": self.is_data}
        if self.sumw is not None:
            rec.update(sumw=self.sumw, sumw_from=self.sumw_from)
        if self.metadata:
            rec["metadata"] = dict(self.metadata)
        return rec


@dataclass(frozen=True)
class Chunk:
    """A range of entries ``[start, stop)`` of one file, with what the processor needs to know of it.

    ``metadata``: the dataset's fileset metadata plus ``sumw`` (the dataset's sum of generator
    weights), ``is_data`` and ``layout``; ``events.metadata`` in the processor.
    """

    path: str
    dataset: str
    start: int
    stop: int
    schema: str
    file_key: str
    tree: str = "Events"
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> str:
        """Dataset, file content, entry range and a hash of the metadata (cross-section, sum of weights, ...).

        The metadata decides the chunk's weights, so a resumed run never reuses a chunk processed
        with another cross-section or another set of the dataset's files.
        """
        meta = hashlib.sha1(json.dumps(dict(self.metadata), sort_keys=True, default=str).encode()).hexdigest()[:8]
        return f"{self.dataset}-{self.file_key}-{self.start}-{self.stop}-{meta}"


@dataclass
class InputPlan:
    """Checked inputs and their chunks (:func:`prepare_inputs`)."""

    checks: list[FileCheck]
    chunks: list[Chunk]
    skipped: dict[str, str]
    fields: list[str] | None


def read_fileset(path: str | os.PathLike[str]) -> list[InputFile]:
    """The files of a coffea fileset JSON, each with its tree, dataset and the dataset's metadata.

    Raises
    ------
    DataError
        Naming the file and the key when the JSON or a dataset entry is malformed.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"fileset {p}: not a readable JSON file ({type(err).__name__}: {err})") from err
    if not isinstance(doc, dict) or not doc:
        raise DataError(f"fileset {p}: expected a mapping {{dataset: {{'files': {{path: tree}}, 'metadata': {{...}}}}}}")
    out = []
    for dataset, entry in doc.items():
        where = f"fileset {p}, dataset {dataset!r}"
        if not isinstance(entry, dict) or not isinstance(entry.get("files"), (dict, list)):
            raise DataError(f"{where}: expected a mapping with 'files' ({{path: tree}}) and optional 'metadata'")
        metadata = entry.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise DataError(f"{where}: 'metadata' should be a mapping, got {type(metadata).__name__}")
        unknown = sorted(set(entry) - {"files", "metadata", "form"})
        if unknown:
            raise DataError(f"{where}: unknown key(s) {unknown}; expected 'files' and 'metadata'")
        files = entry["files"] if isinstance(entry["files"], dict) else dict.fromkeys(entry["files"], "Events")
        for name, spec in files.items():
            tree = spec.get("object_path") if isinstance(spec, dict) else spec
            if not isinstance(tree, str) or not tree:
                raise DataError(f"{where}: file {name!r} should name its tree (a string, or {{'object_path': ...}})")
            local = not is_remote(name) and not Path(name).is_absolute()
            out.append(InputFile(str(p.parent / name) if local else name, tree, str(dataset), metadata))
    return out


def is_fileset(path: str | os.PathLike[str]) -> bool:
    """Whether an input names a coffea fileset JSON (a local ``.json`` file) rather than one ROOT file."""
    text = os.fspath(path)
    return text.lower().endswith(".json") and not is_remote(text)


def resolve_inputs(inputs: Sequence[str | os.PathLike[str] | InputFile]) -> list[InputFile]:
    """Inputs as :class:`InputFile`: a ``.json`` path is a fileset, anything else one file; each file once."""
    if not inputs:
        raise ProcessingError("no input files given")
    files: list[InputFile] = []
    for item in inputs:
        if isinstance(item, InputFile):
            files.append(item)
        elif is_fileset(item):
            files.extend(read_fileset(item))
        else:
            files.append(InputFile(os.fspath(item)))
    seen: dict[str, list[str]] = {}
    for f in files:
        seen.setdefault(f.path if is_remote(f.path) else os.path.realpath(f.path), []).append(f.path)
    repeated = [f"{real} (given {len(given)} times: {', '.join(given)})" for real, given in seen.items() if len(given) > 1]
    if repeated:
        raise ProcessingError(f"input file(s) given more than once: {'; '.join(repeated)}; give each file once")
    return files


def _layout(keys: set[str]) -> str | None:
    if all(b in keys for b in REQUIRED_BRANCHES):
        return "pfnano" if all(b in keys for b in PFNANO_BRANCHES) else "pfcands"
    if all(b in keys for b in STORED_BRANCHES):
        return "pfnano-stored"
    return None


def _layout_error(keys: set[str], layout: str | None, constituents: str) -> str | None:
    """Why a file of ``layout`` cannot give the ``constituents`` (None: it can)."""
    if layout is None:
        missing = [b for b in REQUIRED_BRANCHES if b not in keys]
        return (f"lacks branch(es) {', '.join(missing)} (PF candidates; or, in the older PFNano layout, "
                f"{', '.join(STORED_BRANCHES)})")
    if constituents == "pfnano" and layout == "pfcands":
        missing = [b for b in PFNANO_BRANCHES if b not in keys]
        return f"lacks branch(es) {', '.join(missing)}, which --constituents pfnano needs (the stored AK8 constituents)"
    if constituents == "recluster" and layout == "pfnano-stored":
        return ("has the older PFNano layout (AK8 constituents in FatJetPFCands_*, no PFCands_*): there are no PF "
                "candidates to recluster; use --constituents pfnano")
    return None


def _sum_of_weights(f: Any, events: Any) -> tuple[float | None, str | None]:
    """Sum of generator weights of the file and where it comes from.

    The ``Runs`` tree's ``genEventSumw`` (``genEventSumw_`` before NanoAOD v7) counts every
    generated event, also those a NanoAOD skim dropped; files without it (``hepscale generate``)
    hold every generated event, so the sum of their ``genWeight`` is the same number.
    """
    if "Runs" in f:
        runs = f["Runs"]
        for name in ("genEventSumw", "genEventSumw_"):
            if name in runs.keys():
                return float(runs[name].array(library="np").sum()), f"Runs/{name}"
    if "genWeight" in events.keys():
        return float(events["genWeight"].array(library="np").astype("float64").sum()), "Events/genWeight"
    return None, None


def _file_key(path: str, uuid: str) -> str:
    """What identifies the file's content: path, size and mtime locally; URL and the ROOT file's UUID remotely."""
    if is_remote(path):
        ident = f"{path}:{uuid}"
    else:
        st = os.stat(path)
        ident = f"{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}"
    return hashlib.sha1(ident.encode()).hexdigest()[:12]


def _open_error(path: str, err: Exception) -> str:
    if is_remote(path):
        return (f"{path}: cannot read the remote file ({type(err).__name__}: {err}); check the URL, that the server "
                "is reachable and that you hold a valid grid proxy where it needs one")
    return f"{path}: not a readable ROOT file ({type(err).__name__}: {err})"


def check_file(path: str | os.PathLike[str] | InputFile, *, constituents: str = "recluster",
               tree: str | None = None) -> FileCheck:
    """Check that a file (path, URL or :class:`InputFile`) is a readable ROOT file the processor can use.

    Returns a :class:`FileCheck` whose ``error`` names the file and the problem (None when usable).
    """
    import uproot

    inp = path if isinstance(path, InputFile) else InputFile(os.fspath(path), tree or "Events")
    p, tree = inp.path, tree or inp.tree
    base = {"tree": tree, "dataset": inp.dataset, "metadata": inp.metadata}
    if not is_remote(p) and not os.path.exists(p):
        return FileCheck(p, error=f"{p}: file does not exist", **base)
    try:
        with uproot.open(p, timeout=REMOTE_TIMEOUT) as f:
            if tree not in f:
                return FileCheck(p, error=f"{p}: no TTree {tree!r} (keys: {', '.join(f.keys()[:10])})", **base)
            t = f[tree]
            keys = set(t.keys())
            layout = _layout(keys)
            problem = _layout_error(keys, layout, constituents)
            if problem:
                return FileCheck(p, error=f"{p}: tree {tree!r} {problem}", **base)
            assert layout is not None
            prefix = CANDIDATES[layout]
            optional = tuple(k for k, name in PFCANDS_OPTIONAL_FIELDS.items() if f"{prefix}_{name}" in keys)
            meta = inp.metadata
            flag = meta.get("isData", meta.get("is_data"))
            is_data = bool(flag) if flag is not None else "genWeight" not in keys
            sumw, sumw_from = (None, None) if is_data else _sum_of_weights(f, t)
            return FileCheck(p, entries=int(t.num_entries), optional_fields=optional, layout=layout, is_data=is_data,
                             schema="PFNanoAODSchema" if layout == "pfnano" else "NanoAODSchema",
                             sumw=sumw, sumw_from=sumw_from, key=_file_key(p, str(f.file.uuid)), **base)
    except Exception as err:  # uproot and the network raise many types for corrupt, truncated or unreachable files
        return FileCheck(p, error=_open_error(p, err), **base)


def _dataset_names(checks: Sequence[FileCheck]) -> list[str]:
    """Each file's dataset: the fileset's, else the file's stem (``stem_2``, ... for repeated stems)."""
    names, stems = [], {}
    for check in checks:
        if check.dataset is not None:
            names.append(check.dataset)
            continue
        stem = Path(check.path.split("?", 1)[0]).stem
        stems[stem] = stems.get(stem, 0) + 1
        names.append(stem if stems[stem] == 1 else f"{stem}_{stems[stem]}")
    return names


def make_chunks(checks: Sequence[FileCheck], *, chunksize: int, max_chunks: int | None = None) -> list[Chunk]:
    """Cut every usable file into chunks of at most ``chunksize`` entries.

    ``max_chunks``: at most this many chunks per dataset (a quick test run; the weights keep the
    dataset's full sum of generator weights, so weighted yields are then a fraction of the full ones).
    """
    if chunksize < 1:
        raise ValueError(f"chunksize must be at least 1, got {chunksize}")
    if max_chunks is not None and max_chunks < 1:
        raise ValueError(f"max_chunks must be at least 1, got {max_chunks}")
    usable = [c for c in checks if c.error is None]
    names = _dataset_names(usable)
    sumw: dict[str, float | None] = {}
    for check, name in zip(usable, names, strict=True):
        if name in sumw and (sumw[name] is None) != (check.sumw is None):
            raise ProcessingError(f"{check.path}: dataset {name!r} mixes files with and without a Runs tree sum of "
                                  "generator weights (genEventSumw)")
        sumw[name] = None if check.sumw is None else (sumw.get(name) or 0.0) + check.sumw
    chunks: list[Chunk] = []
    per_dataset: dict[str, int] = {}
    for check, name in zip(usable, names, strict=True):
        meta = {**check.metadata, "sumw": sumw[name], "is_data": check.is_data, "layout": check.layout}
        ranges = [(0, 0)] if check.entries == 0 else [
            (start, min(start + chunksize, check.entries)) for start in range(0, check.entries, chunksize)]
        for start, stop in ranges:
            if max_chunks is not None and per_dataset.get(name, 0) >= max_chunks:
                break
            per_dataset[name] = per_dataset.get(name, 0) + 1
            chunks.append(Chunk(check.path, name, start, stop, check.schema, check.key, check.tree, meta))
    return chunks


def prepare_inputs(inputs: Sequence[str | os.PathLike[str] | InputFile], *, constituents: str = "recluster",
                   skip_bad_files: bool = False, chunksize: int = 5000, max_chunks: int | None = None) -> InputPlan:
    """Check every input and cut the usable ones into chunks.

    Raises
    ------
    ProcessingError
        Naming each bad file (without ``skip_bad_files``; with it they are logged and returned
        under ``skipped``), a file given twice, or no input at all.
    """
    files = resolve_inputs(inputs)
    checks = [check_file(f, constituents=constituents) for f in files]
    skipped = {c.path: c.error for c in checks if c.error is not None}
    if skipped and not skip_bad_files:
        raise ProcessingError("; ".join(skipped.values()) + " (use --skip-bad-files to skip such files)")
    for reason in skipped.values():
        logger.warning("skipping %s", reason)
    chunks = make_chunks(checks, chunksize=chunksize, max_chunks=max_chunks)
    usable = [c for c in checks if c.error is None]
    return InputPlan(checks, chunks, skipped, constituent_fields(usable))


def constituent_fields(checks: Sequence[FileCheck]) -> list[str] | None:
    """Constituent fields of the merged dataset: the optional ones (d0, dz, d0err, dzerr) where every input has them."""
    from hepscale.jets.dataset import CONSTITUENT_FIELDS, OPTIONAL_CONSTITUENT_FIELDS

    if not checks:
        return None
    common = [f for f in OPTIONAL_CONSTITUENT_FIELDS if all(f in c.optional_fields for c in checks)]
    dropped = sorted({f for c in checks for f in c.optional_fields} - set(common))
    if dropped:
        logger.warning("constituent field(s) %s are not in every input; they are left out", dropped)
    return list(CONSTITUENT_FIELDS) + common


@contextlib.contextmanager
def quiet_schema() -> Iterator[None]:
    """NanoAOD schemas warn about cross-references that these files do not use."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Missing cross-reference index")
        warnings.filterwarnings("ignore", message=r"Branch \w+ already exists but its values will be replaced")
        yield


def open_events(chunk: Chunk) -> Any:
    """NanoEvents (virtual mode) for one chunk; ``events.metadata`` holds the chunk's metadata."""
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory, PFNanoAODSchema

    schema = PFNanoAODSchema if chunk.schema == "PFNanoAODSchema" else NanoAODSchema
    with quiet_schema():
        return NanoEventsFactory.from_root(
            {chunk.path: chunk.tree},
            entry_start=chunk.start,
            entry_stop=chunk.stop,
            schemaclass=schema,
            mode="virtual",
            uproot_options={"timeout": REMOTE_TIMEOUT},
            metadata={**chunk.metadata, "dataset": chunk.dataset, "filename": chunk.path},
        ).events()


def event_weights(metadata: Mapping[str, Any], gen_weight: Any, *, luminosity: float) -> Any:
    """Per-event weights: 1 for collision data; ``genWeight * xsec * lumi / sumw`` for simulation.

    ``xsec`` (pb) and ``lumi`` (pb^-1; default ``luminosity``) come from the fileset metadata,
    ``sumw`` from the ``Runs`` trees of the dataset. Simulation without ``xsec`` keeps the bare
    ``genWeight`` (no normalisation to a cross-section).

    Raises
    ------
    DataError
        When ``xsec`` is not a positive number, or the sum of generator weights is missing or not positive.
    """
    import numpy as np

    w = np.asarray(gen_weight, dtype=np.float64)
    if metadata.get("is_data"):
        return np.ones_like(w)
    xsec = metadata.get("xsec")
    if xsec is None:
        return w
    where = f"dataset {metadata.get('dataset', '?')!r}"
    if isinstance(xsec, bool) or not isinstance(xsec, (int, float)) or not xsec > 0:
        raise DataError(f"{where}: metadata 'xsec' should be a positive cross-section in pb, got {xsec!r}")
    lumi = metadata.get("lumi", luminosity)
    sumw = metadata.get("sumw")
    if not sumw or sumw <= 0:
        raise DataError(f"{where}: no positive sum of generator weights (Runs tree genEventSumw) to normalise "
                        f"'xsec' with (got {sumw!r})")
    return w * (float(xsec) * float(lumi) / float(sumw))
