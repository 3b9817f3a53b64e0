"""The architecture as a test: every subpackage says its job, and nothing imports upward.

Data flows ``consumers -> pipeline -> models -> pipeline (store, topic, metrics) ->
dashboards``; the layers below may never import the layers above.  Imports inside
functions count too (``ast.walk`` sees every import statement).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("consumers", "pipeline", "models", "dashboards")

#: Layers inside ``pipeline`` and ``models``: a module may import its own layer and the
#: layers listed for it (the top-level modules of each package form the base layer "").
ALLOWED: dict[str, dict[str, set[str]]] = {
    "pipeline": {
        "": {""},
        "privacy": {"", "privacy"},
        "store": {"", "store"},
        "sinks": {"", "store", "sinks"},
        "alerting": {"", "store", "alerting"},
        "stream": {"", "privacy", "store", "sinks", "alerting", "stream"},
        "demo": {"", "privacy", "store", "sinks", "alerting", "stream", "demo"},
        "cli": {"", "privacy", "store", "sinks", "alerting", "stream", "demo", "cli"},
    },
    "dashboards": {
        "data": {"data"},
        "web": {"data", "web"},
        "": {"", "data", "web"},
    },
    "models": {
        "data": {"data"},
        "": {""},
        "evaluation": {"", "data", "evaluation"},
        "explain": {"", "data", "evaluation", "explain"},
        "training": {"", "data", "evaluation", "explain", "fast", "training"},
        "fast": {"", "fast"},
    },
}
#: Which top-level packages each package may import.
PACKAGE_DEPS = {
    "consumers": {"consumers"},
    "models": {"models"},
    "pipeline": {"pipeline", "consumers", "models"},
    "dashboards": {"dashboards", "pipeline", "consumers", "models"},
}


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in PACKAGES}


def layer(module: str, packages: set[str]) -> str:
    """The subpackage of ``module`` inside its top-level package, or "" for a top module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in packages else ""


def subpackages(package: str) -> set[str]:
    return {p.parent.name for p in (ROOT / package).glob("*/__init__.py")}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_docstring_says_its_job(package):
    for init in [ROOT / package / "__init__.py", *(ROOT / package).rglob("*/__init__.py")]:
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 8 and "TODO" not in doc, init


def test_no_module_imports_upward():
    problems = []
    for path in modules():
        module = dotted(path)
        package = module.split(".")[0]
        for name in imported(path):
            target_package = name.split(".")[0]
            if target_package not in PACKAGE_DEPS[package]:
                problems.append(f"{module} imports {name}")
                continue
            if target_package != package or package not in ALLOWED:
                continue
            subs = subpackages(package)
            own, target = layer(module, subs), layer(name, subs)
            if target not in ALLOWED[package][own]:
                problems.append(f"{module} ({own or 'core'}) imports {name}")
    assert not problems, "\n".join(problems)


def test_the_layering_check_catches_an_upward_import(tmp_path):
    # The check itself must be able to fail: a store module importing the run loop.
    fake = tmp_path / "bad.py"
    fake.write_text("from pipeline.stream.runner import Runner\n")
    name = next(iter(imported(fake)))
    subs = subpackages("pipeline")
    assert layer(name, subs) == "stream"
    assert "stream" not in ALLOWED["pipeline"][layer("pipeline.store.writes", subs)]
