"""The conventions of difftui's typed config: how a field is declared, checked, and refused in one line.

Every config class (`difftui.engine.config.model`, `difftui.engine.config.archs`) is declared with `@config_model`: a frozen
dataclass that pydantic v2 validates (unknown keys forbidden) with these field conventions, applied from the plain
annotations so that adding a field stays one line:

    int     an integer: 3, 3.0, "3", "1_000", "2e5" (a number written as YAML 1.1 leaves it, a string); not 2.5
    float   a number: 1, 1.5, "1e-4", "2e5", "1_000", inf; not NaN, not true/false, not "abc"
    bool    true or false only (no "yes", no 1)
    str     a string only (no number turned into text)
    tuple   a YAML/JSON list
    path    `Path` (a str): resolved against the user's working directory when a new run is composed

A rule that involves more than one field raises `rule(key, message)` from the class's `@model_validator`. Whatever
fails, `validate` raises `PresetError` with one line: the source, the dotted key and what was expected, e.g.
`presets/recipes/x.yaml: key 'lr': expected a number, got 'abc'`. `validate` is the gate at every edge; an object
built directly in code is trusted (the engine's own objects, tests of small pieces).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import types
import typing
from typing import Annotated, Any, Literal, Mapping

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Strict, TypeAdapter, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from difftui.engine.text import one_line

__all__ = ["PresetError", "config_model", "rule", "validate", "first_fault", "to_dict", "parse_number",
           "parse_integer", "Path", "NEW_RUN", "describe_type"]


class PresetError(ValueError):
    """A preset or override is malformed. The message is one line naming the file (or source) and the key."""


# Validation context key: set while a new run is composed (Catalog.resolve), so that the rules of a new run (fit of
# tier and data, paths resolved against the user's directory) apply; a stored run's config is loaded without them.
NEW_RUN = "new_run"
CWD = "cwd"


#----------------------------------------------------------------------------
# The number rule (issue 11 item 8): one parser for YAML, --set, CLI options and the TUI's fields.

_NUMBER = re.compile(r"[+-]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][+-]?\d+)?|[+-]?(inf|infinity)", re.IGNORECASE)


def parse_number(value: Any) -> float:
    """A number as written in a preset, a --set value or a form field: 1, 1.5, 1e-4, 2e5, 1_000, inf.

    Raises ValueError for anything else (a word, true/false, NaN)."""
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()) and "__" not in value:
        out = float(value.strip().replace("_", ""))
    else:
        raise ValueError("expected a number")
    if math.isnan(out):
        raise ValueError("expected a number")
    return out


def parse_integer(value: Any) -> int:
    """A whole number: 3, 3.0, "1_000", "2e5", "1e6". Raises ValueError for 2.5, a word or true/false."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        number = parse_number(value)
    except ValueError:
        raise ValueError("expected an integer") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError("expected an integer")
    if isinstance(value, str) and not re.search(r"[.eE]", value):
        return int(value.strip().replace("_", ""))          # exact for integers beyond float precision
    return int(number)


def _number(value: Any) -> Any:
    try:
        return parse_number(value)
    except ValueError:
        raise PydanticCustomError("number", "expected a number") from None


def _integer(value: Any) -> Any:
    try:
        return parse_integer(value)
    except ValueError:
        raise PydanticCustomError("integer", "expected an integer") from None


class _PathMarker:
    """Metadata that marks a str field as a filesystem path."""


def _absolute(value: str | None, info: ValidationInfo) -> str | None:
    cwd = (info.context or {}).get(CWD)
    if value is None or cwd is None:
        return value
    return os.path.normpath(os.path.join(os.fspath(cwd), os.path.expanduser(value)))


# A path key: stored absolute when a new run is composed (relative paths are resolved against the user's working
# directory, `~` expanded); a stored config keeps what it holds.
Path = Annotated[str, _PathMarker(), AfterValidator(_absolute)]


#----------------------------------------------------------------------------
# The decorator.

_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=False, validate_default=False)


def _convention(tp: Any) -> Any:
    """Map a plain annotation to its difftui convention (see the module docstring)."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        if any(isinstance(m, _PathMarker) for m in meta):
            return Annotated[(Annotated[str, Strict()], *meta)]
        return Annotated[(_convention(base), *meta)]
    if tp is bool:
        return Annotated[bool, Strict()]
    if tp is int:
        return Annotated[int, BeforeValidator(_integer)]
    if tp is float:
        return Annotated[float, BeforeValidator(_number)]
    if tp is str:
        return Annotated[str, Strict()]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_convention(a) for a in typing.get_args(tp))]
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple[_convention(args[0]), ...]
        return tuple[tuple(_convention(a) for a in args)]
    return tp


def config_model(cls: type) -> type:
    """Declare a config class: a frozen dataclass that pydantic validates with difftui's field conventions.

    `validate(cls, data, where)` is the gate at every edge (a preset file, --set, a stored run, the TUI's form);
    an object built directly in code (`Recipe(...)`, `dataclasses.replace`) is trusted, as inside the engine."""
    hints = typing.get_type_hints(cls, include_extras=True)
    own = cls.__dict__.get("__annotations__", {})
    cls.__annotations__ = {name: _convention(hints[name]) for name in own}
    cls.__pydantic_config__ = _CONFIG
    return dataclasses.dataclass(frozen=True)(cls)


def rule(key: str | None, message: str) -> PydanticCustomError:
    """The error a cross-field rule raises: `key` is dotted and relative to the class whose validator raises it."""
    return PydanticCustomError("difftui_rule", "{message}", {"key": key or "", "message": message})


#----------------------------------------------------------------------------
# Validation and the one-line messages.

@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


def validate(cls: type, data: Any, where: str, *, new_run: bool = False, cwd: str | os.PathLike[str] | None = None):
    """Build `cls` from a mapping (a YAML preset, a stored config, a --set tree); PresetError names source and key.

    `new_run=True` applies the rules of a new run, `cwd` resolves path keys against that directory."""
    if not isinstance(data, Mapping):
        raise PresetError(f"{where}: expected a mapping, got {type(data).__name__}")
    context = {NEW_RUN: new_run, CWD: os.fspath(cwd) if cwd is not None else None}
    try:
        return _adapter(cls).validate_python(dict(data), context=context)
    except ValidationError as e:
        raise PresetError(describe(e, cls, where)) from None


def _fields(cls: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls, include_extras=True)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}
    return {}


def _strip(tp: Any) -> Any:
    """Drop Annotated and None from a type: the part that names what is expected."""
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return tp


def _type_at(cls: Any, loc: tuple[Any, ...]) -> Any:
    """The annotation at `loc` inside `cls` (None where it cannot be followed)."""
    tp: Any = cls
    for part in loc:
        tp = _strip(tp)
        if isinstance(part, int):
            args = typing.get_args(tp) if typing.get_origin(tp) in (tuple, list) else ()
            if not args:
                return None
            tp = args[0]
        else:
            fields = _fields(tp)
            if part not in fields:
                return None
            tp = fields[part]
    return tp


def describe_type(tp: Any) -> str:
    """'a number', 'an integer', 'true or false', "one of 'a' | 'b'", 'a list', 'a mapping', ... (for messages)."""
    optional = False
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        if len(args) != 1:
            text = " or ".join(describe_type(a) for a in args)
            return text + (" or null" if optional else "")
        tp = _strip(args[0])
    origin = typing.get_origin(tp)
    if origin is Literal:
        text = "one of " + " | ".join(repr(a) for a in typing.get_args(tp))
    elif tp is bool:
        text = "true or false"
    elif tp is int:
        text = "an integer"
    elif tp is float:
        text = "a number"
    elif tp is str:
        text = "a string"
    elif origin in (tuple, list):
        args = typing.get_args(tp)
        text = f"a list of {_plural(describe_type(args[0]))}" if args else "a list"
    elif origin is dict or dataclasses.is_dataclass(tp):
        text = "a mapping"
    else:
        text = getattr(tp, "__name__", str(tp))
    return text + (" or null" if optional else "")


def _plural(text: str) -> str:
    for article in ("an ", "a "):
        if text.startswith(article):
            return text[len(article):] + "s"
    return text


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_ORDER = {"unexpected_keyword_argument": 0, "extra_forbidden": 0, "missing_argument": 1, "missing": 1,
          "missing_keyword_only_argument": 1}
_BOUNDS = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"), "less_than_equal": ("<=", "le"),
           "less_than": ("<", "lt")}


def _one(error: dict[str, Any], cls: type) -> tuple[str, str]:
    """(dotted key or "", what is wrong) of one pydantic error."""
    kind, loc = error["type"], tuple(error["loc"])
    ctx = error.get("ctx") or {}
    if kind == "difftui_rule":
        return _dotted(loc + tuple(p for p in ctx.get("key", "").split(".") if p)), ctx["message"]
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        parent, key = loc[:-1], loc[-1]
        allowed = ", ".join(_fields(_strip(_type_at(cls, parent))))
        return _dotted(parent), f"unknown key '{key}'" + (f" (allowed: {allowed})" if allowed else "")
    if kind in ("missing", "missing_argument", "missing_keyword_only_argument"):
        return _dotted(loc[:-1]), f"missing key '{loc[-1]}'"
    got = error.get("input")
    if kind in _BOUNDS:
        op, name = _BOUNDS[kind]
        return _dotted(loc), f"expected {op} {ctx.get(name)}, got {got!r}"
    tp = _type_at(cls, loc)
    if tp is not None:
        return _dotted(loc), f"expected {describe_type(tp)}, got {got!r}"
    return _dotted(loc), f"{error['msg']}, got {got!r}"


def _first(e: ValidationError, cls: type) -> tuple[str, str]:
    errors = sorted(e.errors(include_url=False), key=lambda err: _ORDER.get(err["type"], 2))
    return _one(errors[0], cls)


def describe(e: ValidationError, cls: type, where: str) -> str:
    """The first fault of a ValidationError as one line: `where: key 'a.b': what was expected, got what`."""
    key, text = _first(e, cls)
    return one_line(f"{where}: " + (f"key '{key}': " if key else "") + text)


def first_fault(cls: type, data: Any) -> tuple[str, str] | None:
    """(dotted key, reason) of the first fault of `data` read as `cls` (None when it is valid): for a class whose
    rule checks a nested mapping against another class (a backbone's arch against its family's)."""
    if not isinstance(data, Mapping):
        return "", f"expected a mapping, got {type(data).__name__}"
    try:
        _adapter(cls).validate_python(dict(data))
    except ValidationError as e:
        return _first(e, cls)
    return None


#----------------------------------------------------------------------------

def to_dict(obj: Any) -> Any:
    """Config object -> plain dict / list tree (tuples become lists), suitable for YAML and JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
