"""Find strategies, unlearning methods and client roles by name.

The core never imports a concrete method or role. It resolves a name from the
experiment config in one of two ways:

* a short alias (``"federaser"``, ``"honest"``) registered as a Python entry point in
  the group ``fedunlearn.<kind>`` (this package registers its own in ``pyproject.toml``;
  another installed package can register more);
* a dotted path ``"package.module:Name"`` to any importable object, so a user plugs in a
  method of their own without touching this code or installing anything.
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from typing import Any

GROUPS = {
    "method": "fedunlearn.methods",
    "trainer": "fedunlearn.trainers",
    "role": "fedunlearn.roles",
}


class PluginError(LookupError):
    """A name in the config does not lead to a loadable object."""


def available(kind: str) -> list[str]:
    """Short names registered for ``kind`` (``method``, ``trainer`` or ``role``)."""
    return sorted(ep.name for ep in entry_points(group=GROUPS[kind]))


def load_object(spec: str, what: str = "object") -> Any:
    """Import ``"package.module:Name"`` (or ``"package.module.Name"``) and return it."""
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise PluginError(
            f"{what} {spec!r} is not a dotted path; write it as 'package.module:Name'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise PluginError(
            f"cannot import module {module_name!r} for {what} {spec!r}: {err}. "
            "Is it installed, or on PYTHONPATH?"
        ) from err
    except Exception as err:  # the module's own code failed while it was imported
        raise PluginError(
            f"importing module {module_name!r} for {what} {spec!r} failed: "
            f"{type(err).__name__}: {err}"
        ) from err
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError as err:
        raise PluginError(f"module {module_name!r} has no {attr!r} (for {what} {spec!r})") from err
    return obj


def load_plugin(kind: str, name: str) -> Any:
    """Load a registered alias or a dotted path for ``kind``.

    Raises :class:`PluginError` naming the known aliases when ``name`` is neither.
    """
    if kind not in GROUPS:
        raise ValueError(f"unknown plugin kind {kind!r}; one of {sorted(GROUPS)}")
    if ":" in name or "." in name:
        return load_object(name, what=kind)
    found = [ep for ep in entry_points(group=GROUPS[kind]) if ep.name == name]
    if not found:
        known = available(kind)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PluginError(
            f"unknown {kind} {name!r}.{hint} Known: {', '.join(known) or '(none)'}; "
            f"or give a dotted path such as 'my_lab.module:My{kind.title()}'. "
            "If you just added an alias to pyproject.toml, reinstall with "
            "`pip install -e .` so the entry point is registered."
        )
    try:
        return found[0].load()
    except Exception as err:
        raise PluginError(
            f"{kind} {name!r} ({found[0].value}) failed to load: {type(err).__name__}: {err}. "
            "Reinstall with `pip install -e .` if the project moved"
        ) from err
