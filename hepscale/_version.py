"""Version of the package and of the code that produced an output."""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path

try:
    __version__ = metadata.version("hepscale")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, str | bool | None]:
    """Describe the code that is running, for provenance records.

    Returns
    -------
    dict
        ``version`` (package version), ``git_commit`` (full hash or None when the
        package does not run from a git checkout) and ``git_dirty`` (uncommitted
        changes to tracked files).
    """
    root = Path(__file__).resolve().parent.parent
    info: dict[str, str | bool | None] = {"version": __version__, "git_commit": None, "git_dirty": None}
    if not (root / ".git").exists():
        return info
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return info
    info["git_commit"] = commit or None
    info["git_dirty"] = bool(dirty)
    return info
