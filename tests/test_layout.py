"""The folder tree is the architecture: layers import only layers below them, the core
never imports a concrete method or role, and every sub-package is installed."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "fedunlearn"

LAYERS = [
    {"seeding", "plugins", "config", "archives"},
    {"data"},
    {"learning"},
    {"history"},
    {"federation"},
    {"unlearning"},
    {"defenses", "attacks"},
    {"roles", "evaluation", "reporting"},
    {"run"},
    {"apps"},
    {"studies"},
    {"cli", "__init__"},
]
"""fedunlearn's layers, bottom first (docs/architecture.md draws them)."""

RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}
PLUGIN_LIMIT = RANK["reporting"]
"""Methods (strategies/) and roles (clients/) build on the core up to this layer; the
harness (run, apps, studies, cli) is not theirs to import."""


def _layer_of(path: Path) -> str:
    parts = path.relative_to(CORE).parts
    return parts[0].removesuffix(".py") if len(parts) == 1 else parts[0]


def _fedunlearn_imports(path: Path) -> set[str]:
    """Dotted names of every fedunlearn module ``path`` imports, at any depth."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fedunlearn")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fedunlearn"):
            found.add(node.module)
    return found


def _imported_layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_belongs_to_a_layer() -> None:
    layers = {_layer_of(p) for p in CORE.rglob("*.py")}
    assert layers <= set(RANK), f"not in any layer: {sorted(layers - set(RANK))}"


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_layer_imports_only_layers_below_it(path: Path) -> None:
    own = _layer_of(path)
    for name in _fedunlearn_imports(path):
        target = _imported_layer(name)
        assert target not in ("strategies", "clients"), (
            f"{path.name} imports {name}: the core finds methods and roles by name only"
        )
        if target != own:
            assert RANK[target] < RANK[own], f"{own} (layer {RANK[own]}) imports {name}"


@pytest.mark.parametrize(
    "path",
    sorted([*(ROOT / "strategies").glob("*.py"), *(ROOT / "clients").glob("*.py")]),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_methods_and_roles_build_on_the_core_not_on_the_harness(path: Path) -> None:
    for name in _fedunlearn_imports(path):
        target = _imported_layer(name)
        if target in ("strategies", "clients"):
            continue
        assert RANK[target] <= PLUGIN_LIMIT, f"{path.name} imports the harness: {name}"


def test_the_layer_test_sees_a_violation(tmp_path: Path) -> None:
    # The import scan must catch an upward import, or the tests above prove nothing.
    bad = tmp_path / "bad.py"
    bad.write_text("def late():\n    from fedunlearn.run.experiment import run_group\n")
    assert {_imported_layer(n) for n in _fedunlearn_imports(bad)} == {"run"}
    assert RANK["run"] > RANK["learning"]


def test_every_sub_package_is_installed() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in CORE.rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert {"fedunlearn.strategies", "fedunlearn.clients"} <= listed


def test_every_sub_package_says_what_it_owns_and_may_import() -> None:
    for init in CORE.rglob("__init__.py"):
        if init.parent == CORE:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc or init.parent.name == "phases", init


MODULE_LINES = 400
CLASS_LINES = 200
SOURCES = sorted(
    p
    for folder in ("fedunlearn", "strategies", "clients", "examples")
    for p in (ROOT / folder).rglob("*.py")
)


def _oversized(path: Path) -> list[str]:
    text = path.read_text()
    found = []
    if len(text.splitlines()) > MODULE_LINES:
        found.append(f"{path.name}: {len(text.splitlines())} lines (split the module)")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno >= CLASS_LINES:
            size = node.end_lineno - node.lineno + 1
            found.append(f"{path.name}: class {node.name} is {size} lines")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_400_lines_and_no_class_over_200(path: Path) -> None:
    assert not _oversized(path)


def test_the_size_test_sees_an_oversized_class(tmp_path: Path) -> None:
    big = tmp_path / "big.py"
    big.write_text("class Big:\n" + "    x = 1\n" * CLASS_LINES)
    assert _oversized(big) == [f"big.py: class Big is {CLASS_LINES + 1} lines"]
