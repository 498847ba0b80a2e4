"""workers.ml must stay free of Django, so it runs in any process.

The `ml-django-free` import-linter contract (pyproject.toml, tests/test_layering.py) checks the
source; this test checks what actually gets loaded, dynamic imports included.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN_ROOTS = ("django", "apps", "lepton_portal", "celery", "rest_framework")

# Imports every module of the package, subpackages included, so none can slip past the check.
PROBE = (
    "import importlib, pkgutil, sys, workers.ml\n"
    "for module in pkgutil.walk_packages(workers.ml.__path__, 'workers.ml.'):\n"
    "    importlib.import_module(module.name)\n"
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
