"""A processing run's chunk results: how they travel from a worker, what resume may reuse, how they are merged.

A worker writes nothing: :func:`encode_jets` turns a chunk's jets into Arrow IPC bytes (the
table and schema metadata of :func:`hepscale.jets.dataset.write_jets`), which come back through
dask with the chunk's accumulator (cutflow and ``hist.Hist`` objects). The client keeps each
result under ``OUTPUT/.parts/`` (:func:`store_part`), named by its *part key*:

- ``<key>.arrow``: its jets (Arrow IPC file, uncompressed; read back memory-mapped);
- ``<key>.json``: its accumulator, the cutflow and the histograms in the JSON form of
  :mod:`hepscale.jets.histograms`, written last: it marks the part finished.

Both are written under a temporary name and renamed into place. The part key is the chunk key
(dataset, the input file's content key: path, size and mtime, or URL and ROOT file UUID; entry range) plus a hash of what decides the chunk's
output: the processor class, its resolved settings (``to_dict(processor.config)``), what its
``settings_extra()`` returns (e.g. the hash of a luminosity-mask file's content) and the code
version. A part is reused only when both files are there, the accumulator parses and names the
same key and the jet table is a valid Arrow file of the same key with the rows the accumulator
announces; a damaged part is redone, and anything else in the folder (parts of other settings,
leftovers, planted files) is removed before the run and never read. Nothing here is unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepscale.errors import DataError
from hepscale.jets.dataset import _META_KEY

if TYPE_CHECKING:
    from hepscale.jets.inputs import Chunk

logger = logging.getLogger(__name__)

_FORMAT = "hepscale-part"


def settings_key(processor: Any) -> str:
    """Hash of the processor class, its resolved settings, ``settings_extra()`` and the code version (12 hex digits).

    ``processor.settings_extra()``, where the processor defines it, returns a JSON-able mapping of
    what else decides its output (e.g. ``{"lumi_mask_sha1": ...}``).
    """
    from hepscale._version import code_version
    from hepscale.config import to_dict

    cls = type(processor)
    config = getattr(processor, "config", None)
    record = {
        "processor": f"{cls.__module__}.{cls.__qualname__}",
        "config": to_dict(config) if config is not None else None,
        "code_version": code_version(),
    }
    extra = getattr(processor, "settings_extra", None)
    if callable(extra):
        value = extra()
        if not isinstance(value, Mapping):
            raise TypeError(f"{cls.__qualname__}.settings_extra() should return a mapping, got {type(value).__name__}")
        record["extra"] = dict(value)
    return hashlib.sha1(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:12]


def part_key(chunk: Chunk, settings: str) -> str:
    """File stem of a chunk's parts: the chunk key (file, entry range) and the settings hash."""
    return f"{chunk.key}-{settings}"


def part_files(parts_dir: Path, key: str) -> tuple[Path, Path]:
    """The jet table and the accumulator of one part."""
    return parts_dir / f"{key}.arrow", parts_dir / f"{key}.json"


def encode_jets(jets: Any, metadata: Mapping[str, Any]) -> bytes:
    """A chunk's jets as Arrow IPC file bytes, with the schema and metadata of ``write_jets``."""
    import awkward as ak
    import pyarrow as pa

    from hepscale._version import code_version
    from hepscale.jets.dataset import JET_FIELDS, DatasetError

    missing = [f for f in JET_FIELDS + ("constituents",) if f not in jets.fields]
    if missing:
        raise DatasetError(f"jets of {metadata.get('part_key', 'a chunk')} lack field(s) {missing}")
    table = ak.to_arrow_table(jets, extensionarray=False)
    meta = {**metadata, "code_version": metadata.get("code_version", code_version()), "n_jets": len(jets)}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta, default=str)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_table(path: Path, *, key: str | None = None, validate: bool = False) -> Any:
    """A part's jet table (pyarrow, memory-mapped); ``key``: check that it is a part of that key.

    Raises
    ------
    DataError
        Naming the file when it is not an Arrow file (of ``key``) or, with ``validate``, its data is inconsistent.
    """
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        if validate:
            table.validate(full=True)
    except (OSError, ValueError, pa.ArrowException) as err:  # ArrowInvalid for a truncated or damaged file
        raise DataError(f"part {path} is not a readable Arrow file ({type(err).__name__}: {err})") from err
    if key is not None:
        try:
            made_for = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}")).get("part_key")
        except (ValueError, AttributeError) as err:
            raise DataError(f"part {path}: unreadable metadata ({err})") from err
        if made_for != key:
            raise DataError(f"part {path}: made for key {made_for!r}, expected {key!r}")
    return table


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` under a temporary name beside ``path``, then rename it into place.

    Not synced to disk: a part cut short by a crash is found damaged on resume and redone.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def accumulator_doc(key: str, n_jets: int, acc: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form of a chunk's accumulator (``cutflow`` and ``hists``)."""
    from hepscale.jets.histograms import hist_to_dict

    return {
        "format": _FORMAT,
        "key": key,
        "n_jets": int(n_jets),
        "cutflow": {k: int(v) for k, v in acc["cutflow"].items()},
        "hists": {name: hist_to_dict(h) for name, h in acc["hists"].items()},
    }


def store_part(parts_dir: Path, key: str, *, table: bytes, n_jets: int, acc: Mapping[str, Any]) -> None:
    """Keep a chunk's result under ``parts_dir``: its jet table, then its accumulator (the finished mark)."""
    table_path, acc_path = part_files(parts_dir, key)
    _write_atomically(table_path, table)
    _write_atomically(acc_path, (json.dumps(accumulator_doc(key, n_jets, acc)) + "\n").encode())


def read_accumulator(path: Path, *, key: str) -> dict[str, Any]:
    """Read a part's accumulator back into ``{"cutflow": {...}, "hists": {name: hist.Hist}, "n_jets": int}``.

    Raises
    ------
    DataError
        Naming the file when it is not JSON, not a part of this key or malformed.
    """
    from hepscale.jets.histograms import hist_from_dict

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"part {path} is not readable JSON ({type(err).__name__}: {err})") from err
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise DataError(f"part {path}: expected a mapping with format {_FORMAT!r}")
    if doc.get("key") != key:
        raise DataError(f"part {path}: made for key {doc.get('key')!r}, expected {key!r}")
    cutflow, hists, n_jets = doc.get("cutflow"), doc.get("hists"), doc.get("n_jets")
    if not isinstance(cutflow, dict) or not all(isinstance(v, int) for v in cutflow.values()):
        raise DataError(f"part {path}: 'cutflow' should map step names to integer counts")
    if not isinstance(hists, dict) or not isinstance(n_jets, int):
        raise DataError(f"part {path}: expected 'hists' (a mapping) and 'n_jets' (an integer)")
    return {"cutflow": cutflow, "n_jets": n_jets,
            "hists": {name: hist_from_dict(h, where=f"part {path} [{name}]") for name, h in hists.items()}}


def check_part(parts_dir: Path, key: str) -> tuple[bool, str | None]:
    """Whether a finished, intact part of ``key`` is there to reuse.

    Returns ``(True, None)`` for a part to reuse, ``(False, None)`` when there is none and
    ``(False, reason)`` for a damaged one (to redo); nothing is unpickled or executed.
    """
    table, acc = part_files(parts_dir, key)
    if not (table.is_file() and acc.is_file()):
        return False, None
    try:
        n_jets = read_accumulator(acc, key=key)["n_jets"]
        rows = read_table(table, key=key, validate=True).num_rows
    except DataError as err:
        return False, str(err)
    if rows != n_jets:
        return False, f"{table} has {rows} rows, its accumulator says {n_jets}"
    return True, None


def remove_part(parts_dir: Path, key: str) -> None:
    for path in part_files(parts_dir, key):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_stale_parts(parts_dir: Path, keys: Sequence[str]) -> list[str]:
    """Delete every file of ``parts_dir`` that is not a part of ``keys`` (other settings, leftovers)."""
    keep = {p.name for k in keys for p in part_files(parts_dir, k)}
    removed = []
    for entry in sorted(parts_dir.iterdir()):
        if entry.name not in keep and (entry.is_file() or entry.is_symlink()):
            entry.unlink()
            removed.append(entry.name)
    if removed:
        logger.info("removed %d part file(s) of other settings or earlier runs from %s", len(removed), parts_dir)
    return removed


def read_part(part: Path, constituent_fields: list[str] | None) -> Any:
    """A part's jet table (pyarrow), with the constituent fields of the merged dataset."""
    import awkward as ak

    table = read_table(part)
    ctype = table.schema.field("constituents").type.value_type
    if constituent_fields is None or [ctype.field(i).name for i in range(ctype.num_fields)] == constituent_fields:
        return table
    arr = ak.from_arrow(table)
    arr = ak.with_field(arr, arr.constituents[constituent_fields], "constituents")
    return ak.to_arrow_table(arr, extensionarray=False).replace_schema_metadata(table.schema.metadata)


def parquet_options(schema: Any) -> dict[str, Any]:
    """Writer options of the merged jet dataset: zstd, dictionary encoding for the string columns only.

    A float column rarely repeats a value, so a dictionary would be built and dropped for every
    page; without it the file is written about twice as fast and is a fifth smaller.
    """
    import pyarrow as pa

    strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return {"compression": "zstd", "use_dictionary": strings}


class StreamingMerge:
    """Append finished chunks to the output dataset, in input order, while the workers run.

    With ``whole_files`` (``--skip-bad-files``), a file is appended only once all its chunks
    succeeded, so that a file skipped mid-way never leaves rows behind; without it a bad chunk
    stops the run, and each chunk is appended as soon as the chunks before it are. The order of
    the rows does not depend on the order in which workers finish. ``keys`` maps each chunk key
    to its part key. The accumulators of the appended chunks are summed per dataset in input
    order too (:attr:`totals`), so that the histograms do not depend on that order either.
    """

    def __init__(self, chunks: Sequence[Chunk], parts_dir: Path, target: Path, fields: list[str] | None,
                 keys: Mapping[str, str], *, whole_files: bool = True) -> None:
        self.parts_dir = parts_dir
        self.target = target
        self.fields = fields
        self.keys = keys
        self.whole_files = whole_files
        self.order = list(chunks)
        self.by_file: dict[str, list[Chunk]] = {}
        for c in chunks:
            self.by_file.setdefault(c.path, []).append(c)
        self.done: set[str] = set()
        self.accs: dict[str, Mapping[str, Any] | None] = {}  # of the chunks done but not merged yet
        self.bad: set[str] = set()
        self.next = 0
        self.writer: Any = None
        self.totals: dict[str, dict[str, Any]] = {}

    def chunk_done(self, chunk: Chunk, acc: Mapping[str, Any] | None = None) -> None:
        """A chunk's part is stored; ``acc``: its accumulator (None: read from its part when merged)."""
        self.done.add(chunk.key)
        self.accs[chunk.key] = acc
        self._advance()

    def file_bad(self, path: str) -> None:
        from hepscale.jets.inputs import ProcessingError

        if not self.whole_files:
            raise ProcessingError(f"{path}: a bad file cannot be skipped once its first chunks are merged")
        self.bad.add(path)
        for c in self.by_file.get(path, []):
            self.accs.pop(c.key, None)
        self._advance()

    def _add(self, chunk: Chunk, acc: Mapping[str, Any] | None) -> None:
        from coffea.processor import accumulate

        if acc is None:
            acc = read_accumulator(part_files(self.parts_dir, self.keys[chunk.key])[1], key=self.keys[chunk.key])
        new = {"cutflow": dict(acc["cutflow"]), "hists": dict(acc["hists"])}
        old = self.totals.get(chunk.dataset)
        self.totals[chunk.dataset] = new if old is None else accumulate([new], old)  # in place

    def _ready(self, c: Chunk) -> bool:
        if c.key not in self.done:
            return False
        return not self.whole_files or all(o.key in self.done for o in self.by_file[c.path])

    def _advance(self) -> None:
        import pyarrow.parquet as pq

        from hepscale.jets.inputs import ProcessingError

        while self.next < len(self.order):
            c = self.order[self.next]
            if c.path not in self.bad:
                if not self._ready(c):
                    return
                table = read_part(part_files(self.parts_dir, self.keys[c.key])[0], self.fields)
                if self.writer is None:
                    self.writer = pq.ParquetWriter(self.target, table.schema, **parquet_options(table.schema))
                elif not table.schema.equals(self.writer.schema, check_metadata=False):
                    raise ProcessingError(f"{c.path} (entries {c.start}-{c.stop}): jet table schema {table.schema} "
                                          f"differs from the dataset's {self.writer.schema}")
                self.writer.write_table(table.replace_schema_metadata(self.writer.schema.metadata))
                del table
                self._add(c, self.accs.pop(c.key))
            self.next += 1

    def close(self, metadata: dict[str, Any]) -> None:
        from hepscale.jets.inputs import ProcessingError

        if self.writer is None:
            raise ProcessingError("no input could be processed: every file was skipped")
        self.writer.add_key_value_metadata({"hepscale": json.dumps(metadata, default=str)})
        self.writer.close()
        self.writer = None
