"""The HTCondor bindings (optional imports), the package's error and HTCondor's quoting rules.

``htcondor2`` and ``dask_jobqueue`` are optional (``pip install 'hepscale[condor]'``): they are
imported when a function needs them, and a missing one raises ``ModuleNotFoundError`` that says
what to install.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Sequence
from types import ModuleType

from hepscale.errors import HepscaleError

__all__ = ["CondorError", "condor_arguments", "condor_literal", "optional", "htcondor", "dags"]

#: what to install for the optional HTCondor modules
_CONDOR_EXTRA = "pip install 'hepscale[condor]'"

#: the literal dollar of submit descriptions
_DOLLAR = "$(DOLLAR)"
#: what no escape gives back: ``$$`` (match-time substitution) and ``$(DOLLAR)`` itself
_UNWRITABLE = re.compile(r"\$\$|\$\(dollar\)", re.IGNORECASE)


class CondorError(HepscaleError, RuntimeError):
    """A submit description, DAG or submission problem (the message says which and why)."""


def optional(module: str, what: str) -> ModuleType:
    """Import an optional module; a missing one raises ``ModuleNotFoundError`` saying what to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is not None and not (module == err.name or module.startswith(f"{err.name}.")):
            raise  # a module the optional one needs is missing: report that one as it is
        raise ModuleNotFoundError(f"{what} ({module}) is not installed; install it with:\n    {_CONDOR_EXTRA}",
                                  name=module) from err


def htcondor() -> ModuleType:
    """The HTCondor Python bindings (``htcondor2``)."""
    return optional("htcondor2", "the HTCondor Python bindings")


def dags() -> ModuleType:
    """``htcondor2.dags``, the DAG writer of the HTCondor bindings."""
    return optional("htcondor2.dags", "the HTCondor Python bindings")


def _expand(text: str) -> str:
    """``text`` as HTCondor expands a submit value (the bindings' macro expansion)."""
    return str(htcondor().Submit({"hepscale_value": text}).expand("hepscale_value"))


def _escape_dollars(text: str, what: str, *, framed: bool = False) -> str:
    """``text`` with every ``$`` written as ``$(DOLLAR)``, checked by expanding it with the
    bindings (``framed``: between two marks, as submit values are stripped of outer blanks)."""
    if "$" not in text:
        return text
    escaped = text.replace("$", _DOLLAR)
    left, right = ("<", ">") if framed else ("", "")
    if _UNWRITABLE.search(text) or _expand(f"{left}{escaped}{right}") != f"{left}{text}{right}":
        raise CondorError(f"{what} {text!r} cannot be written into a submit description: HTCondor would expand "
                          "its '$' ('$$' and '$(DOLLAR)' cannot be passed literally); rename it without them")
    return escaped


def condor_literal(value: str | os.PathLike[str], *, what: str = "value") -> str:
    """``value`` written so that HTCondor's macro expansion gives it back unchanged.

    HTCondor expands ``$(NAME)``, ``$ENV(NAME)``, ``$INT(...)``, ... in every submit value, item
    and DAG ``VARS`` value, and ``$$(NAME)`` from the machine when the job is matched. Every
    ``$`` is therefore written as ``$(DOLLAR)`` (``$$(`` would not do: it is the match-time
    form), and the result is checked by expanding it with the bindings.

    Raises
    ------
    CondorError
        Naming ``what`` and the value, when it cannot be written (it holds ``$$`` or
        ``$(DOLLAR)`` itself).
    """
    return _escape_dollars(os.fspath(value), what, framed=True)


def condor_arguments(args: Sequence[str]) -> str:
    """Quote an argument list in HTCondor's new syntax: ``"a 'b c' 'it''s'"``.

    A ``$`` is written as ``$(DOLLAR)`` (see :func:`condor_literal`), so that an argument such as
    ``Work $(ProcId)`` reaches the job as it is.
    """
    out = []
    for arg in args:
        arg = str(arg)
        if "\n" in arg or '"' in arg:
            raise CondorError(f"argument {arg!r} holds a newline or a double quote, which HTCondor cannot pass")
        if arg == "" or re.search(r"[\s']", arg):
            out.append("'" + arg.replace("'", "''") + "'")
        else:
            out.append(arg)
    return _escape_dollars('"' + " ".join(out) + '"', "arguments")
