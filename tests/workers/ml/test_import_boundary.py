"""workers.ml must stay free of Django, so it runs in any process (CI enforces this)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
ML_PACKAGE = REPO_ROOT / "workers" / "ml"
FORBIDDEN_ROOTS = ("django", "apps", "lepton_portal", "celery", "rest_framework")
# workers.tasks is the Celery/Django side; the ML core must not reach back into it either.
FORBIDDEN_MODULES = ("workers.tasks",)

# Imports every module of the package, so a new module cannot slip past the check.
PROBE = (
    "import importlib, pkgutil, sys, workers.ml\n"
    "for module in pkgutil.iter_modules(workers.ml.__path__):\n"
    "    importlib.import_module('workers.ml.' + module.name)\n"
    "assert 'workers.ml.trainer' in sys.modules and 'workers.ml.tabular' in sys.modules\n"
    "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
    f"{FORBIDDEN_ROOTS!r} or m.startswith('workers.tasks'))\n"
    "assert not bad, bad\n"
)


def test_importing_ml_modules_loads_no_django() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def _is_forbidden(module: str) -> bool:
    root = module.split(".")[0]
    return root in FORBIDDEN_ROOTS or any(
        module == banned or module.startswith(banned + ".") for banned in FORBIDDEN_MODULES
    )


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level > 1:
                # "from .. import x" leaves workers.ml; treat it as an import of workers.<x>.
                found.extend((node.lineno, f"workers.{alias.name}") for alias in node.names)
            elif node.level == 0 and node.module:
                found.append((node.lineno, node.module))
                found.extend((node.lineno, f"{node.module}.{a.name}") for a in node.names)
    return found


def test_no_forbidden_imports_in_source() -> None:
    sources = sorted(ML_PACKAGE.rglob("*.py"))
    assert sources, "workers/ml has no Python files?"
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{line}: {module}"
        for path in sources
        for line, module in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        if _is_forbidden(module)
    ]
    assert offenders == []


def test_scanner_catches_forbidden_imports() -> None:
    sample = ast.parse(
        "import django\nfrom apps.models import X\nfrom lepton_portal import settings\n"
        "from workers.tasks import train\nfrom workers import tasks\nimport numpy\n"
    )
    flagged = [module for _, module in _imports(sample) if _is_forbidden(module)]
    assert flagged[:3] == ["django", "apps.models", "apps.models.X"]
    assert "lepton_portal" in flagged
    assert "workers.tasks" in flagged
    assert "numpy" not in flagged
