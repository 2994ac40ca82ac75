"""Options as dataclass fields that explain and validate themselves.

A section of the config (and the options of a client role) is a frozen dataclass whose
fields are made with :func:`option`: a default, one line of help, and the allowed
values or bounds. :func:`parse_options` turns a table read from TOML (or a flat Flower
run config) into an instance, collecting *every* problem, each naming the key, what
was given and what is allowed, into a :class:`ConfigError`. :func:`describe_options`
lists the keys with their defaults, meaning and allowed values.

A section may also hold sub-tables (``[unlearning.federaser]``, ``[roles]`` entries):
it then defines ``table_entry(key, value, problems)``, which returns the field the
entry belongs to, its key and its value, or None when the key is not one of its.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """The experiment config is invalid; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[str], source: str = "experiment config") -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid {source}:\n{lines}")


def option(
    default: Any,
    help: str,
    *,
    choices: Sequence[Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    table: bool = False,
) -> Any:
    """A config field: its default, one line of help, its allowed values or bounds.

    ``table`` marks a field that collects sub-tables or free keys (see the module
    docstring).
    """
    meta = {
        "help": help,
        "choices": choices,
        "ge": ge,
        "gt": gt,
        "le": le,
        "lt": lt,
        "table": table,
    }
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def unknown_key(key: str, allowed: set[str] | Sequence[str], section: str) -> str:
    """A problem naming an unknown key, the closest allowed one and all of them."""
    where = f"[{section}]" if section else "the top level"
    full = f"{section}.{key}" if section else key
    close = difflib.get_close_matches(str(key), list(allowed), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown key {full!r}.{hint} Allowed in {where}: {', '.join(sorted(allowed))}"


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, str(tp)
    )


def coerce(name: str, value: Any, tp: Any, problems: list[str]) -> Any:
    """``value`` as the annotation ``tp`` says; None and a problem when it cannot be."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        items: Any = value
        if isinstance(value, str):  # from a flat Flower run_config: "0,3" or "[0, 3]"
            text = value.strip().strip("[]")
            items = [s.strip() for s in text.split(",") if s.strip()]
            if item_tp is int:
                try:
                    items = [int(s) for s in items]
                except ValueError:
                    problems.append(f"{name} must be a list of integers, got {value!r}")
                    return None
        if not isinstance(items, list):
            problems.append(f"{name} must be a list, got {value!r}")
            return None
        out = [coerce(f"{name}[{i}]", v, item_tp, problems) for i, v in enumerate(items)]
        return None if any(v is None for v in out) else out
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):  # inf or nan would pass every bound check
                problems.append(f"{name} must be a finite number, got {value!r}")
                return None
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - schema error
        raise TypeError(f"unsupported config type {tp}")
    problems.append(f"{name} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    return None


def check_bounds(name: str, value: Any, meta: Mapping[str, Any], problems: list[str]) -> None:
    """Append a problem when ``value`` is not among the choices or out of bounds."""
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(
            f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}{hint}"
        )
    for op, test, word in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ):
        bound = meta.get(op)
        if bound is not None and not test(value, bound):
            problems.append(f"{name} must be {word} {bound}, got {value!r}")


def parse_table(
    cls: type[T], section: str, raw: Mapping[str, Any], problems: list[str]
) -> T | None:
    """Validate ``raw`` into ``cls``; problems go to ``problems`` (None if any)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    tables = {n: {} for n, f in fields.items() if f.metadata.get("table")}
    scalar_names = {n for n in fields if n not in tables}
    values: dict[str, Any] = {}
    start = len(problems)
    for key, value in raw.items():
        name = f"{section}.{key}" if section else str(key)
        if key in scalar_names:
            coerced = coerce(name, value, hints[key], problems)
            if coerced is not None:
                check_bounds(name, coerced, fields[key].metadata, problems)
                values[key] = coerced
            continue
        entry = cls.table_entry(key, value, problems) if tables else None  # type: ignore[attr-defined]
        if entry is None:
            problems.append(unknown_key(key, scalar_names, section))
        elif entry is not False:
            table, table_key, table_value = entry
            tables[table][table_key] = table_value
    if len(problems) > start:
        return None
    return cls(**values, **tables)


def parse_options(cls: type[T], where: str, raw: Mapping[str, Any]) -> T:
    """Validate ``raw`` into ``cls`` or raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    parsed = parse_table(cls, where, raw, problems)
    if problems or parsed is None:
        raise ConfigError(problems)
    return parsed


def describe_options(cls: type, section: str) -> list[str]:
    """``key = default   # help (allowed values)`` for every field of ``cls``."""
    lines = [f"[{section}]"] if section else []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if meta.get("table"):
            lines.append(f"# {meta['help']} (sub-table)")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        allowed = _allowed(meta)
        lines.append(f"{f.name} = {toml_value(default)}   # {meta['help']}{allowed}")
    return lines


def toml_value(value: Any) -> str:
    """``value`` as it is written in TOML (``true``, ``"iid"``, ``[0, 3]``)."""
    import tomli_w

    return tomli_w.dumps({"v": value}).partition("=")[2].strip()


def _allowed(meta: Mapping[str, Any]) -> str:
    if meta.get("choices") is not None:
        return " (one of " + ", ".join(toml_value(c) for c in meta["choices"]) + ")"
    bounds = [
        f"{word} {meta[op]}"
        for op, word in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
        if meta.get(op) is not None
    ]
    return f" ({', '.join(bounds)})" if bounds else ""
