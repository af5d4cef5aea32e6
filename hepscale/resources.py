"""Files shipped with hepscale: the ``configs/`` and ``condor/`` folders of the project.

There is one copy of each: the user-facing top-level ``configs/`` (model size table, site
profiles, study and training configs) and ``condor/`` (the job wrapper). The package reaches
them through ``hepscale/_resources/configs`` and ``hepscale/_resources/condor``, two symbolic
links into the source tree (an editable install reads the project's files directly); a built
wheel holds the files themselves, copied there by setuptools. Everything is read with
:mod:`importlib.resources`, so an installed package finds them wherever it lives.

- :func:`resource`: a packaged file as a :class:`~importlib.resources.abc.Traversable`;
- :func:`resource_path`: the same file as a real :class:`~pathlib.Path` (extracted to a
  temporary file that lives until the interpreter exits where the package is zipped);
- :func:`project_file`: a project-relative file from the working directory if it is there,
  else the packaged copy (how the commands find ``configs/sites/NAME.yaml`` and the studies).

Example
-------
>>> import yaml
>>> sizes = yaml.safe_load(resource("configs/models.yaml").read_text(encoding="utf-8"))["sizes"]
>>> "Pico" in sizes
True
"""

from __future__ import annotations

import atexit
import contextlib
import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

__all__ = ["RESOURCE_FOLDERS", "project_file", "resource", "resource_path"]

#: the top-level project folders that are shipped with the package
RESOURCE_FOLDERS = ("configs", "condor")

#: the package folder that holds (links to) the shipped folders
_ROOT = "_resources"

# keeps files extracted from a zipped package alive until the interpreter exits
_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def _parts(relative: str | os.PathLike[str]) -> tuple[str, ...]:
    """The parts of a project-relative path inside a shipped folder, checked."""
    path = PurePosixPath(Path(relative).as_posix())
    parts = path.parts
    if path.is_absolute() or not parts or ".." in parts or parts[0] not in RESOURCE_FOLDERS:
        raise FileNotFoundError(
            f"hepscale resource {str(relative)!r} is not a path inside the shipped folders "
            f"({', '.join(f'{f}/' for f in RESOURCE_FOLDERS)})"
        )
    return parts


def resource(relative: str | os.PathLike[str]) -> Traversable:
    """A file shipped with hepscale, e.g. ``resource("configs/models.yaml")``.

    Parameters
    ----------
    relative
        Path relative to the project root, inside ``configs/`` or ``condor/``.

    Raises
    ------
    FileNotFoundError
        When the package holds no such file (the message names it).
    """
    node = resources.files("hepscale").joinpath(_ROOT, *_parts(relative))
    if not node.is_file():
        raise FileNotFoundError(
            f"hepscale resource {str(relative)!r} is not in the installed package "
            f"({resources.files('hepscale')}/{_ROOT}/); reinstall hepscale or check the name"
        )
    return node


def resource_path(relative: str | os.PathLike[str]) -> Path:
    """A file shipped with hepscale as a real path on disk (see :func:`resource`).

    The installed file itself where the package is a folder; a temporary copy that lives until
    the interpreter exits where it is zipped.
    """
    node = resource(relative)
    if isinstance(node, Path):
        return node
    return _extracted.enter_context(resources.as_file(node))


def project_file(relative: str | os.PathLike[str]) -> Path:
    """``relative`` from the working directory where it exists there, else the packaged copy.

    Parameters
    ----------
    relative
        A project-relative path such as ``configs/studies/generation_phase1_cpu.yaml`` (an
        absolute path is returned as is when it exists).

    Raises
    ------
    FileNotFoundError
        When neither the working directory nor the package holds the file.
    """
    local = Path(relative)
    if local.is_file():
        return local
    try:
        return resource_path(relative)
    except FileNotFoundError:
        pass
    raise FileNotFoundError(f"{str(relative)!r} is neither in the working directory {Path.cwd()} nor shipped with hepscale")
