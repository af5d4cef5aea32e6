"""The parts of a processing run under ``OUTPUT/.parts/``: what resume may reuse and how it is merged.

Each chunk leaves two files named by its *part key*:

- ``<key>.parquet``: its jets (:func:`hepscale.jets.dataset.write_jets`);
- ``<key>.json``: its accumulator, the cutflow and the histograms in the JSON form of
  :mod:`hepscale.jets.histograms`, written last.

The part key is the chunk key (dataset, input file path, size and mtime, entry range) plus a
hash of what decides the chunk's output: the processor class, its resolved settings
(``to_dict(processor.config)``) and the code version. A part is reused only when both files
are there, the accumulator parses and names the same key and the jet table has the rows it
announces; anything else in the folder (parts of other settings, leftovers, planted files) is
removed before the run and never read. Nothing here is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepscale.errors import DataError

if TYPE_CHECKING:
    from hepscale.jets.inputs import Chunk

logger = logging.getLogger(__name__)

_FORMAT = "hepscale-part"


def settings_key(processor: Any) -> str:
    """Hash of the processor class, its resolved settings and the code version (12 hex digits)."""
    from hepscale._version import code_version
    from hepscale.config import to_dict

    cls = type(processor)
    config = getattr(processor, "config", None)
    record = {
        "processor": f"{cls.__module__}.{cls.__qualname__}",
        "config": to_dict(config) if config is not None else None,
        "code_version": code_version(),
    }
    return hashlib.sha1(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:12]


def part_key(chunk: Chunk, settings: str) -> str:
    """File stem of a chunk's parts: the chunk key (file, entry range) and the settings hash."""
    return f"{chunk.key}-{settings}"


def part_files(parts_dir: Path, key: str) -> tuple[Path, Path]:
    """The jet table and the accumulator of one part."""
    return parts_dir / f"{key}.parquet", parts_dir / f"{key}.json"


def write_accumulator(path: Path, *, key: str, n_jets: int, acc: Mapping[str, Any]) -> None:
    """Write a chunk's accumulator (``cutflow`` and ``hists``) as JSON, atomically."""
    from hepscale._io import atomic_write_text
    from hepscale.jets.histograms import hist_to_dict

    doc = {
        "format": _FORMAT,
        "key": key,
        "n_jets": int(n_jets),
        "cutflow": {k: int(v) for k, v in acc["cutflow"].items()},
        "hists": {name: hist_to_dict(h) for name, h in acc["hists"].items()},
    }
    atomic_write_text(path, json.dumps(doc) + "\n")


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
    import pyarrow as pa
    import pyarrow.parquet as pq

    table, acc = part_files(parts_dir, key)
    if not (table.is_file() and acc.is_file()):
        return False, None
    try:
        n_jets = read_accumulator(acc, key=key)["n_jets"]
        rows = pq.read_metadata(table).num_rows
    except (DataError, OSError, ValueError, pa.ArrowException) as err:  # pyarrow: ArrowInvalid for a damaged file
        return False, str(err)
    if rows != n_jets:
        return False, f"{table} has {rows} rows, its accumulator says {n_jets}"
    return True, None


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
    import pyarrow.parquet as pq

    table = pq.read_table(part)
    ctype = table.schema.field("constituents").type.value_type
    if constituent_fields is None or [ctype.field(i).name for i in range(ctype.num_fields)] == constituent_fields:
        return table
    arr = ak.from_arrow(table)
    arr = ak.with_field(arr, arr.constituents[constituent_fields], "constituents")
    return ak.to_arrow_table(arr, extensionarray=False)


class StreamingMerge:
    """Append finished files to the output dataset, in input order, while the workers run.

    A file is appended only once all its chunks succeeded, so a file skipped with
    ``--skip-bad-files`` never leaves rows behind; the order of the rows does not depend on
    the order in which workers finish. ``keys`` maps each chunk key to its part key.
    """

    def __init__(self, chunks: Sequence[Chunk], parts_dir: Path, target: Path, fields: list[str] | None,
                 keys: Mapping[str, str]) -> None:
        self.parts_dir = parts_dir
        self.target = target
        self.fields = fields
        self.keys = keys
        self.by_file: dict[str, list[Chunk]] = {}
        for c in chunks:
            self.by_file.setdefault(c.path, []).append(c)
        self.order = list(self.by_file)
        self.done: set[str] = set()
        self.bad: set[str] = set()
        self.next = 0
        self.writer: Any = None

    def chunk_done(self, chunk: Chunk) -> None:
        self.done.add(chunk.key)
        self._advance()

    def file_bad(self, path: str) -> None:
        self.bad.add(path)
        self._advance()

    def _advance(self) -> None:
        import pyarrow.parquet as pq

        from hepscale.jets.processing import ProcessingError

        while self.next < len(self.order):
            path = self.order[self.next]
            if path not in self.bad:
                if not all(c.key in self.done for c in self.by_file[path]):
                    return
                for c in self.by_file[path]:
                    part = part_files(self.parts_dir, self.keys[c.key])[0]
                    table = read_part(part, self.fields)
                    if self.writer is None:
                        self.writer = pq.ParquetWriter(self.target, table.schema, compression="zstd")
                    elif not table.schema.equals(self.writer.schema, check_metadata=False):
                        raise ProcessingError(f"{path} (entries {c.start}-{c.stop}): jet table schema {table.schema} "
                                              f"differs from the dataset's {self.writer.schema}")
                    self.writer.write_table(table.replace_schema_metadata(self.writer.schema.metadata))
            self.next += 1

    def close(self, metadata: dict[str, Any]) -> None:
        from hepscale.jets.processing import ProcessingError

        if self.writer is None:
            raise ProcessingError("no input could be processed: every file was skipped")
        self.writer.add_key_value_metadata({"hepscale": json.dumps(metadata, default=str)})
        self.writer.close()
        self.writer = None
