"""The fits of a study: their :class:`~hepscale.fit.FitOptions`, checked when the study is loaded,
their job command lines, and whether the runs table holds enough runs for each.

- :func:`typed_fits`: every fit's ``options`` checked as :class:`~hepscale.fit.FitOptions` fields,
  and the ``args`` of older study YAMLs (``hepscale fit`` flags) turned into options, once
  (:func:`hepscale.fit.options_from_args`);
- :func:`expand_per`: a fit repeated over grid axes;
- :func:`check_fits`: every fit checked when the study is loaded (names, laws, options), so that
  a wrong fit is an error of ``study plan`` and not of the last step of a finished study;
- :func:`fit_options`: the options of one fit (the study's bootstrap, seed and figure label,
  the fit's own law, variable and options);
- :func:`fit_command`: its ``hepscale fit`` job (:func:`hepscale.fit.options_to_args`), the one
  source for the local executor and the DAG, holding its options for the finish step;
- :func:`min_runs`, :func:`usable_runs`, :func:`fit_shortfall`: a fit whose law needs more runs
  than the study has (a proxy correlation over 2 model sizes) is skipped with a warning instead
  of failing the study; each law declares what it needs (:func:`hepscale.fit.min_runs`,
  :func:`hepscale.fit.required_columns`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hepscale.study.folder import RUNS_PARQUET

if TYPE_CHECKING:
    from hepscale.fit import FitOptions
    from hepscale.study.config import FitSpec, StudyConfig

__all__ = ["expand_per", "STUDY_SET_FIELDS", "FitCommand", "typed_fits", "fit_options", "fit_command",
           "check_fits", "min_runs", "usable_runs", "fit_shortfall"]

#: fields of :class:`~hepscale.fit.FitOptions` that the study sets itself, and where they come from
STUDY_SET_FIELDS = {"law": "fit.fits[i].law", "x": "fit.fits[i].x", "progress": "the study (no progress bars)"}

#: fields the study writes in every fit job, also at their defaults
_EXPLICIT = ("n_bootstrap", "seed", "label")


def _converted_args(i: int, spec: FitSpec, bad: Callable[[str, str], Exception]) -> dict[str, Any]:
    """The options that the ``hepscale fit`` flags ``spec.args`` set (those that differ from the defaults)."""
    import dataclasses

    from hepscale.fit import options_from_args

    if not isinstance(spec.args, list) or not all(isinstance(a, (str, int, float)) for a in spec.args):
        raise bad(f"fit.fits[{i}].args", f"expected a list of command-line arguments, got {spec.args!r}")
    try:
        given, default = options_from_args(spec.args), options_from_args([])
    except ValueError as err:
        raise bad(f"fit.fits[{i}].args", f"'hepscale fit' cannot take {spec.args}: {err}") from err
    out: dict[str, Any] = {}
    for f in dataclasses.fields(given):
        value = getattr(given, f.name)
        if f.name == "columns":
            value = {role: col for role, col in value.items() if col != default.columns.get(role)}
        if value != getattr(default, f.name) and value != {} and f.name != "progress":
            out[f.name] = value
    taken = [f"--{name}" for name in STUDY_SET_FIELDS if name in out]
    if taken:
        raise bad(f"fit.fits[{i}].args", f"'hepscale fit' cannot take {spec.args}: they set {', '.join(taken)}, "
                  "which the study sets itself (use fit.fits[i].law and .x; the result goes to fits/<name>.json)")
    return out


def typed_fits(study: StudyConfig, bad: Callable[[str, str], Exception]) -> list[FitSpec]:
    """The fits of ``study.fit.fits`` with their ``args`` turned into ``options`` (once; ``args``
    left empty) and every option checked as a field of :class:`~hepscale.fit.FitOptions`.

    Raises
    ------
    Exception
        ``bad(field, message)`` naming ``fit.fits[i].options.<key>`` (an unknown key, a value of
        the wrong type or out of range, a field the study sets) or ``fit.fits[i].args``.
    """
    import dataclasses

    from hepscale.config import ConfigError, from_dict
    from hepscale.fit import FitOptions

    fields = {f.name for f in dataclasses.fields(FitOptions)}
    allowed = sorted(fields - set(STUDY_SET_FIELDS))
    out = []
    for i, spec in enumerate(study.fit.fits or []):
        where = f"fit.fits[{i}].options"
        if not isinstance(spec.options, dict):
            raise bad(where, f"expected a mapping of fit options, got {spec.options!r}")
        for key in spec.options:
            if key not in fields:
                raise bad(f"{where}.{key}", f"not an option of a fit; options are {allowed}")
            if key in STUDY_SET_FIELDS:
                raise bad(f"{where}.{key}", f"set by {STUDY_SET_FIELDS[key]}")
        converted = _converted_args(i, spec, bad) if spec.args else {}
        both = sorted(set(converted) & set(spec.options))
        if both:
            raise bad(f"{where}.{both[0]}", f"also set by fit.fits[{i}].args; set it in one place")
        options = {**converted, **spec.options}
        try:
            typed = from_dict(FitOptions, {"law": spec.law, **options}, where=where)
        except ConfigError as err:
            field, _, what = str(err).partition(": ")
            raise bad(field, what) from err
        for key, message in typed.errors().items():
            if key in options:
                raise bad(f"{where}.{key}", message)
        out.append(dataclasses.replace(spec, args=[], options={key: getattr(typed, key) for key in options}))
    return out


def expand_per(study: StudyConfig, bad: Callable[[str, str], Exception]) -> list[FitSpec]:
    """The fits of ``study.fit.fits`` with every ``per`` expanded: one fit per combination of the
    grid's values of those axes, named ``<name>_<value>...`` (e.g. ``loss_vs_D_kin_Pico``) and
    filtered to its runs (``options.filters``); fits without ``per`` unchanged.

    Raises
    ------
    Exception
        ``bad(field, message)`` for an axis that is not a grid axis of the task, or one the grid
        does not list (its values come from the base training config).
    """
    import itertools

    from hepscale.study.config import FitSpec

    axes = study.spec.fit_axes()  # grid axes a fit may be repeated over -> runs-table column
    grid_values = {"model": study.grid.models, **study.spec.grid_axes(study)}
    out: list[FitSpec] = []
    for i, f in enumerate(study.fit.fits or []):
        if not f.per:
            out.append(f)
            continue
        for axis in f.per:
            if axis not in axes:
                raise bad(f"fit.fits[{i}].per", f"{axis!r} is not a grid axis of a {study.task} study; "
                          f"expected some of {list(axes)}")
            if not grid_values[axis]:
                raise bad(f"fit.fits[{i}].per", f"grid.{'models' if axis == 'model' else axis} lists no values to "
                          f"repeat the fit over")
        if len(set(f.per)) != len(f.per):
            raise bad(f"fit.fits[{i}].per", f"an axis is listed twice: {f.per}")
        for combo in itertools.product(*(grid_values[a] for a in f.per)):
            filters = [f"{axes[a]}=={v}" for a, v in zip(f.per, combo)]
            name = "_".join([f.name, *(str(v) for v in combo)])
            options = {**f.options, "filters": [*f.options.get("filters", []), *filters]}
            out.append(FitSpec(name=name, law=f.law, x=f.x, args=list(f.args), options=options))
    return out


class FitCommand(list):  # type: ignore[type-arg]
    """The ``hepscale`` arguments of a fit job (``fit runs.parquet ...``), a list of strings like
    every job's, that keeps the :class:`~hepscale.fit.FitOptions` it was written from
    (:attr:`options`): the finish step checks those, never the arguments."""

    options: FitOptions

    def __init__(self, args: Iterable[str], options: FitOptions) -> None:
        super().__init__(args)
        self.options = options


def fit_options(study: StudyConfig, spec: FitSpec) -> FitOptions:
    """The options of one fit: the study's ``fit.n_bootstrap``, ``fit.seed`` and figure label, the
    fit's ``options`` over them, its ``law`` and ``x``, and no progress bars."""
    from hepscale.config import from_dict
    from hepscale.fit import FitOptions, default_x
    from hepscale.study.data import figure_label

    values = {"n_bootstrap": study.fit.n_bootstrap, "seed": study.fit.seed, "label": figure_label(study),
              **spec.options, "law": spec.law, "x": spec.x or default_x(spec.law), "progress": False}
    return from_dict(FitOptions, values, where=f"fit {spec.name}")


def fit_command(study: StudyConfig, spec: FitSpec) -> FitCommand:
    """The ``hepscale`` arguments of one fit job, relative to the study folder: ``fit runs.parquet``,
    its output ``fits/<name>.json`` and the flags of :func:`fit_options`
    (:func:`hepscale.fit.options_to_args`)."""
    from hepscale.fit import options_to_args

    options = fit_options(study, spec)
    return FitCommand(["fit", RUNS_PARQUET, "--output", f"fits/{spec.name}.json", "--format", "none",
                       *options_to_args(options, always=_EXPLICIT)], options)


def check_fits(study: StudyConfig, bad: Callable[[str, str], Exception], *, name_pattern: str) -> None:
    """Check every fit of ``study.fit.fits`` (after :func:`typed_fits` and :func:`expand_per`):
    unique names matching ``name_pattern``, known laws, ``x`` one of N, D, C, options that make a
    :class:`~hepscale.fit.FitOptions`, and the task's own check of each (a tagging study's proxy fit
    must name its metric: it has no SWD).

    Raises
    ------
    Exception
        ``bad(field, message)`` for the first fit that is wrong.
    """
    from hepscale.config import ConfigError
    from hepscale.fit import ANALYSES

    names = set()
    for i, f in enumerate(study.fit.fits or []):
        if not re.fullmatch(name_pattern, f.name) or f.name in names:
            raise bad(f"fit.fits[{i}].name", f"expected a unique name of letters, digits and _.+-, got {f.name!r}")
        names.add(f.name)
        if f.law not in ANALYSES:
            raise bad(f"fit.fits[{i}].law", f"expected one of {list(ANALYSES)}, got {f.law!r}")
        if f.x is not None and f.x not in ("N", "D", "C"):
            raise bad(f"fit.fits[{i}].x", f"expected N, D or C, got {f.x!r}")
        try:
            options = fit_options(study, f)
        except ConfigError as err:
            raise bad(f"fit.fits[{i}].options", str(err)) from err
        for key, message in options.errors().items():
            raise bad(f"fit.fits[{i}].options.{key}", message)
        study.spec.check_fit(i, options, bad)


def min_runs(options: FitOptions) -> int:
    """The fewest runs the fit ``options`` can use, as its law declares (:func:`hepscale.fit.min_runs`)."""
    from hepscale.fit import min_runs as law_min_runs

    return law_min_runs(options)


def usable_runs(table: Any, options: FitOptions) -> int | None:
    """Rows of the runs table the fit ``options`` would use (its filters applied, the columns its
    law declares set: :func:`hepscale.fit.required_columns`), or None when that cannot be told
    here (a column or filter the fit itself will report)."""
    from hepscale.fit import required_columns
    from hepscale.runs.table import apply_filters

    try:
        rows = apply_filters(table, options.filters)
    except (KeyError, ValueError):
        return None
    columns = required_columns(options)
    if any(c is None or c not in rows.columns for c in columns):
        return None
    return int(rows[columns].notna().all(axis=1).sum())


def fit_shortfall(options: FitOptions, table: Any) -> str | None:
    """Why the fit ``options`` cannot run on ``table`` (too few runs for its law), or None when it
    can (or when the fit itself has to tell)."""
    need, have = min_runs(options), usable_runs(table, options)
    if have is None or have >= need:
        return None
    return f"{have} run(s) in the runs table, law {options.law!r} needs at least {need}"
