"""Event selection of collision data: a golden-JSON lumi mask and a trigger selection.

``lumi_mask`` (a CMS "golden" JSON, ``{"run": [[first_lumi, last_lumi], ...]}``) keeps the
luminosity sections certified for physics; it applies to collision data only (files or
datasets flagged ``isData``, or without ``genWeight``) and is read once, on the client, by
coffea's :class:`coffea.lumi_tools.LumiMask`, so that the workers need not see the file. Its
content's hash is part of the processing cache key. ``triggers`` keeps the events that fired
any of the listed HLT paths (``HLT_AK8PFJet500`` or ``AK8PFJet500``); it applies to every input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hepscale.errors import ConfigError, DataError

__all__ = ["LumiSelection", "load_lumi_mask", "trigger_mask"]


@dataclass
class LumiSelection:
    """A golden-JSON lumi mask (coffea ``LumiMask``) and the SHA-1 of the JSON's content."""

    mask: Any
    path: str
    sha1: str

    def select(self, events: Any, filename: str) -> np.ndarray:
        """Boolean mask of the events in certified luminosity sections."""
        missing = [b for b in ("run", "luminosityBlock") if b not in events.fields]
        if missing:
            raise DataError(f"{filename}: the lumi mask needs branch(es) {', '.join(missing)}")
        return np.asarray(self.mask(np.asarray(events.run), np.asarray(events.luminosityBlock)), dtype=bool)


def load_lumi_mask(path: str | None) -> LumiSelection | None:
    """Read the golden JSON at ``path`` (None: no mask).

    Raises
    ------
    ConfigError
        Naming the setting ``lumi_mask`` and the file when it is missing or not a golden JSON.
    """
    if not path:
        return None
    from coffea.lumi_tools import LumiMask

    p = Path(path)
    try:
        raw = p.read_bytes()
        doc = json.loads(raw)
        if not isinstance(doc, dict) or not all(
                isinstance(v, list) and all(isinstance(r, list) and len(r) == 2 for r in v) for v in doc.values()):
            raise ValueError('expected {"run": [[first_lumi, last_lumi], ...], ...}')
        mask = LumiMask(str(p))
    except (OSError, ValueError) as err:
        raise ConfigError(f"lumi_mask: {p} is not a readable golden JSON ({type(err).__name__}: {err})") from err
    return LumiSelection(mask, str(p), hashlib.sha1(raw).hexdigest())


def trigger_mask(events: Any, triggers: Sequence[str], filename: str) -> np.ndarray | None:
    """Boolean mask of the events that fired any of ``triggers`` (None: no trigger selection).

    Raises
    ------
    DataError
        Naming the file and the HLT branch when the file lacks it.
    """
    if not triggers:
        return None
    hlt = events.HLT if "HLT" in events.fields else None
    keep = np.zeros(len(events), dtype=bool)
    for name in triggers:
        path = name.removeprefix("HLT_")
        if hlt is None or path not in hlt.fields:
            raise DataError(f"{filename}: trigger branch HLT_{path} is missing (setting 'triggers')")
        keep |= np.asarray(hlt[path], dtype=bool)
    return keep
