"""Configuration: YAML -> validated dataclasses, with ``key=value`` overrides.

Layering follows one rule everywhere: dataclass defaults -> YAML file -> command-line
overrides. YAML is read with ``yaml.safe_load``. Unknown keys are an error that lists the
valid ones; values must have the type of the field, taking what users type: an ``int`` field
accepts ``3``, an integral float (``1.0e+9``) and an integral numeric string (``"1e9"``,
``"1.0e9"``: YAML 1.1 reads an exponent as a string unless the number has a dot and the
exponent a sign) but not ``1.5`` or ``"three"``; a ``float`` field accepts ``3`` and numeric
strings (``"3e-4"``) but no NaN or infinity unless the field allows them (metadata
:data:`ALLOW_NONFINITE`). A YAML mapping with a repeated key is an error that names the key
and its line (:class:`UniqueKeyLoader`), and a file that is not UTF-8 is an error naming the
file. Overrides are ``dotted.key=value`` strings whose value is parsed as YAML
and then checked against the field type (nanoGPT's rule, without ``exec``). Every error names
the field.

The configs are plain dataclasses checked by this small loader rather than pydantic models:
dataclasses keep the configs importable (and picklable, comparable, hashable where frozen)
without an extra validation layer or dependency, and the loader's messages name the field
and the file or command line it came from.

Example
-------
>>> from dataclasses import dataclass
>>> @dataclass
... class Cfg:
...     lr: float = 1e-3
...     steps: int = 100
>>> load_config(Cfg, overrides=["steps=200"]).steps
200
"""

from __future__ import annotations

import dataclasses
import decimal
import io
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from hepscale.errors import ConfigError

T = TypeVar("T")

__all__ = [
    "ALLOW_NONFINITE", "ConfigError", "UniqueKeyLoader", "load_config", "from_dict", "to_dict", "apply_overrides",
    "read_yaml", "safe_load",
]

#: dataclass field metadata key: ``field(default=math.inf, metadata={ALLOW_NONFINITE: True})`` lets a
#: float field take NaN and infinities (every other float field rejects them)
ALLOW_NONFINITE = "allow_nonfinite"


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with a repeated key (instead of keeping the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *anchor`` merges are not repeats
                continue
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: SafeLoader reports it
                break
            if first is not key_node.start_mark:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r} (line {key_node.start_mark.line + 1}; "
                    f"first on line {first.line + 1})", key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def safe_load(text: str, *, name: str | None = None) -> Any:
    """``yaml.safe_load`` of ``text`` with :class:`UniqueKeyLoader` (a repeated key is an error).

    ``name`` (a file name) is what the error messages of PyYAML call the text.
    """
    stream: Any = text
    if name is not None:
        stream = io.StringIO(text)
        stream.name = name
    return yaml.load(stream, Loader=UniqueKeyLoader)  # a SafeLoader subclass: safe


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping from ``path`` (safe loader, no repeated keys); an empty file is ``{}``.

    Raises
    ------
    ConfigError
        When the file does not exist, is not UTF-8 text, is not valid YAML (a repeated key
        included, named with its line) or does not hold a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"config file {p} is not UTF-8 text (byte {err.object[err.start:err.start + 1]!r} at offset {err.start}); "
            "save it as UTF-8"
        ) from err
    try:
        data = safe_load(text, name=str(p))
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {p} is not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at top level, got {type(data).__name__}")
    return data


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str, *, finite: bool = True) -> Any:
    """Check ``value`` against the type annotation ``tp``; return it (converted where lossless).

    With ``finite``, a float (also inside lists and mappings) must be finite.
    """
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, tp, where, finite=finite)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where=where)
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        return _coerce_sequence(value, tp, where, finite=finite)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {
            _coerce(k, kt, where, finite=finite): _coerce(v, vt, f"{where}.{k}", finite=finite) for k, v in value.items()
        }
    return _coerce_scalar(value, tp, where, finite=finite)


def _coerce_union(value: Any, tp: Any, where: str, *, finite: bool) -> Any:
    """:func:`_coerce` for a union ``tp``: the first member type that takes ``value``."""
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    if isinstance(value, str) and str in args:  # a string stays one: "1e9" is no int for int | str
        return value
    if finite and float in args and _non_finite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _coerce(value, arg, where, finite=finite)
        except ConfigError:
            pass
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _coerce_sequence(value: Any, tp: Any, where: str, *, finite: bool) -> list[Any] | tuple[Any, ...]:
    """:func:`_coerce` for a list or tuple ``tp`` (``tuple[int, str]`` checks the length, too)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, f"{where}[{i}]", finite=finite) for i, (v, a) in enumerate(zip(value, args)))
    item = args[0] if args else Any
    out = [_coerce(v, item, f"{where}[{i}]", finite=finite) for i, v in enumerate(value)]
    return tuple(out) if (origin is tuple or tp is tuple) else out


def _coerce_scalar(value: Any, tp: Any, where: str, *, finite: bool) -> Any:
    """:func:`_coerce` for ``bool``, ``int``, ``float``, ``str``, another class, or anything else (kept)."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e9" and "1.0e9" as strings
            number = _integral(value)
            if number is not None:
                return number
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        return _coerce_float(value, where, finite=finite)
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def _coerce_float(value: Any, where: str, *, finite: bool) -> float:
    """:func:`_coerce` for ``float``: a number or a numeric string (finite with ``finite``)."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" as a string
            number = float(value)
        except ValueError:
            pass
    if number is None:
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if finite and not math.isfinite(number):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return number


def _non_finite(value: Any) -> bool:
    """True for a NaN or infinite float, or a string that reads as one (``"nan"``, ``"1e999"``)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, float) and not math.isfinite(value)


#: the largest decimal exponent a numeric string may have for an ``int`` field (Python's digit limit for str -> int)
_MAX_DIGITS = 4300


def _integral(text: str) -> int | None:
    """The integer a numeric string holds (``"1e9"``, ``"1.0e9"``, ``"2.0"``), or None if it holds none."""
    try:
        number = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        return None
    if not number.is_finite() or number.adjusted() > _MAX_DIGITS or number != number.to_integral_value():
        return None
    return int(number)


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, validating keys and types.

    Raises
    ------
    ConfigError
        On an unknown key (the message lists the valid ones) or a value of the wrong type.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys are: {', '.join(sorted(fields))}"
        )
    kwargs = {
        name: _coerce(value, hints[name], f"{where}.{name}", finite=not fields[name].metadata.get(ALLOW_NONFINITE))
        for name, value in data.items()
    }
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{where}: {err}") from err
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """The plain-data form of a config dataclass (tuples become lists), for YAML/JSON."""

    def convert(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: convert(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [convert(x) for x in v]
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        return v

    return convert(obj)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], *, cls: type | None = None) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides to a nested mapping (a new mapping is returned).

    Values are parsed as YAML scalars/lists (``lr=3e-4``, ``sizes=[S, M]``, ``flag=true``).
    With ``cls`` given, an unknown key is reported with the valid keys at that level.
    """
    out: dict[str, Any] = _deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must have the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {err}") from err
        parts = key.split(".")
        node = out
        sub_cls = cls
        for depth, part in enumerate(parts):
            if sub_cls is not None and dataclasses.is_dataclass(sub_cls):
                names = {f.name: f for f in dataclasses.fields(sub_cls)}
                if part not in names:
                    raise ConfigError(
                        f"override {item!r}: unknown key {'.'.join(parts[: depth + 1])!r}; "
                        f"valid keys are: {', '.join(sorted(names))}"
                    )
                hint = typing.get_type_hints(sub_cls)[part]
                sub_cls = hint if dataclasses.is_dataclass(hint) else None
            if depth == len(parts) - 1:
                node[part] = value
            else:
                child = node.get(part)
                if child is None:
                    child = {}
                elif not isinstance(child, dict):
                    raise ConfigError(f"override {item!r}: {'.'.join(parts[: depth + 1])!r} is not a mapping")
                node[part] = child
                node = child
    return out


def _deepcopy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deepcopy(v) if isinstance(v, Mapping) else (list(v) if isinstance(v, list) else v) for k, v in data.items()}


def _defaults_dict(cls: type) -> dict[str, Any]:
    return to_dict(cls())


def load_config(
    cls: type[T],
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: Sequence[str] = (),
    base: Mapping[str, Any] | None = None,
) -> T:
    """Load a config dataclass: defaults -> ``base`` mapping -> YAML ``path`` -> ``overrides``.

    Parameters
    ----------
    cls
        The config dataclass; every field must have a default.
    path
        Optional YAML file; its keys are validated against ``cls``.
    overrides
        ``dotted.key=value`` strings applied last.
    base
        Optional mapping applied before the file (e.g. a study's shared section).
    """
    data = _defaults_dict(cls)
    where = "config"
    for layer, name in ((base, "base"), (read_yaml(path) if path is not None else None, str(path))):
        if layer:
            from_dict(cls, _merge(data, layer), where=name)  # validate this layer on its own name
            data = _merge(data, layer)
            where = name
    if overrides:
        data = apply_overrides(data, overrides, cls=cls)
        where = "command line"
    return from_dict(cls, data, where=where)


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = _deepcopy(a)
    for k, v in b.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out
