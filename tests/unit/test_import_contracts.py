"""The architecture as a check: every subpackage says its job, and nothing imports upward.

The layering lives in ``.importlinter`` (import-linter contracts) and is checked by running
``lint-imports``; data flows ``consumers -> pipeline -> models -> pipeline (store, topic,
metrics) -> dashboards``, with the ``attnwatch`` composition root above everything.
"""

from __future__ import annotations

import ast
import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("consumers", "pipeline", "models", "dashboards")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(ROOT / ".importlinter"), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_docstring_says_its_job(package):
    for init in [ROOT / package / "__init__.py", *(ROOT / package).rglob("*/__init__.py")]:
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 8 and "TODO" not in doc, init


def test_every_import_contract_is_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and " KEPT" in result.stdout


def skeleton(root: Path) -> None:
    """The smallest tree the contracts accept: every non-optional layer, no imports."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter", encoding="utf-8")
    named = {
        name
        for section in config.sections()
        for key in ("source_modules", "forbidden_modules")
        for name in config[section].get(key, "").split()
    }
    for package in (
        "consumers",
        "pipeline/stream",
        "pipeline/sinks",
        "pipeline/alerting",
        "pipeline/store",
        "pipeline/privacy",
        "dashboards/web",
        "dashboards/data",
        "models/training",
        "models/explain",
        "models/fast",
        "models/evaluation",
        "models/data",
        "bench/harness",
    ):
        (root / package).mkdir(parents=True, exist_ok=True)
    for init in [*root.glob("*"), *root.glob("*/*")]:
        if init.name != "bench":  # bench is a namespace package; bench.harness a root
            (init / "__init__.py").touch()
    for name in named:
        path = root.joinpath(*name.split("."))
        if not path.is_dir():
            path.with_suffix(".py").touch()
    (root / "pipeline/stream/runner.py").write_text("RUNNER = 1\n")


@pytest.mark.parametrize(
    ("modules", "contract"),
    [
        ({"pipeline/store/writes.py": "from pipeline.stream.runner import RUNNER\n"}, "pipeline:"),
        ({"models/modeling.py": "def f():\n    import pipeline\n"}, "Packages:"),
        ({"pipeline/config.py": "import attnwatch\n"}, "Packages:"),
        ({"dashboards/data/queries.py": "import dashboards.web\n"}, "dashboards:"),
        ({"pipeline/sinks/topic.py": "import pipeline.privacy\n"}, "pipeline: only the run loop"),
        (
            {
                "models/saving.py": "import models.modeling\n",
                "models/modeling.py": "def f():\n    import models.saving\n",
            },
            "No import cycles",
        ),
        (
            {
                "bench/harness/run.py": "from . import report\n",
                "bench/harness/report.py": (
                    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import run\n"
                ),
            },
            "No import cycles",
        ),
    ],
)
@pytest.mark.slow
def test_an_upward_import_or_a_cycle_breaks_a_contract(tmp_path, modules, contract):
    # The check itself must be able to fail, on the real contracts, for a lazy import too.
    skeleton(tmp_path)
    assert lint_imports(tmp_path).returncode == 0
    for module, source in modules.items():
        (tmp_path / module).write_text(source)
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "kept, 1 broken." in result.stdout, result.stdout
    report = result.stdout.split("Broken contracts", 1)[1]
    assert report.split("-\n", 2)[1].strip().startswith(contract), result.stdout
