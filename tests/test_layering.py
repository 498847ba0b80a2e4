"""The import-linter contracts in pyproject.toml hold, and each one catches the import it forbids.

`make lint` runs the same contracts; here they also run with the suite, and each is proven to
break on a planted import in a throwaway tree, so a contract that silently checks nothing fails.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def _config() -> dict[str, Any]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["tool"]["importlinter"]


def _contract(contract_id: str) -> dict[str, Any]:
    return next(c for c in _config()["contracts"] if c["id"] == contract_id)


def _lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _ini_list(values: list[str]) -> str:
    return "".join(f"\n    {value}" for value in values)


def _write_tree(root: Path, contract: dict[str, Any]) -> None:
    """A tree holding every portal module the contract names, and a config with that contract.

    The contract's ignore_imports are left out: they name imports of the real tree only.
    """
    config = _config()
    for name in (
        config["root_packages"] + contract["source_modules"] + contract["forbidden_modules"]
    ):
        if name.split(".")[0] not in config["root_packages"]:
            continue  # a third-party package such as django: the installed one is used
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            package = root.joinpath(*parts[:depth])
            package.mkdir(exist_ok=True)
            (package / "__init__.py").touch()
    (root / ".importlinter").write_text(
        "[importlinter]\n"
        f"root_packages ={_ini_list(config['root_packages'])}\n"
        f"include_external_packages = {config['include_external_packages']}\n"
        f"[importlinter:contract:{contract['id']}]\n"
        f"name = {contract['name']}\n"
        f"type = {contract['type']}\n"
        f"source_modules ={_ini_list(contract['source_modules'])}\n"
        f"forbidden_modules ={_ini_list(contract['forbidden_modules'])}\n"
    )


def test_the_contracts_hold_for_the_code() -> None:
    completed = _lint_imports(REPO_ROOT)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    for contract in _config()["contracts"]:
        assert contract["name"] in " ".join(completed.stdout.split())


PLANTED = [
    ("core-leaf", "apps/core/dashboard.py", "from apps.datasets import models"),
    ("core-leaf", "apps/core/api.py", "import apps.accounts"),
    ("core-leaf", "apps/tenants/models/owners.py", "from apps.audit import x"),
    ("core-leaf", "apps/core/setup.py", "from apps.tenants import services"),
    ("ml-django-free", "workers/ml/trainer.py", "import django.db"),
    ("ml-django-free", "workers/ml/cells.py", "from rest_framework import fields"),
    ("ml-django-free", "workers/ml/loop.py", "import celery"),
    ("ml-django-free", "workers/ml/data.py", "from lepton_portal import settings"),
    ("ml-django-free", "workers/ml/predictor.py", "from workers.tasks import jobs"),
    ("apps-no-tasks", "apps/datasets/services.py", "from workers.tasks import jobs"),
]


@pytest.mark.parametrize(("contract_id", "path", "statement"), PLANTED)
def test_it_breaks_on_a_planted_import(
    tmp_path: Path, contract_id: str, path: str, statement: str
) -> None:
    _write_tree(tmp_path, _contract(contract_id))
    clean = _lint_imports(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    module = tmp_path / path
    module.parent.mkdir(parents=True, exist_ok=True)
    (module.parent / "__init__.py").touch()
    module.write_text(statement + "\n")
    broken = _lint_imports(tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "BROKEN" in broken.stdout


def test_it_breaks_on_an_indirect_import(tmp_path: Path) -> None:
    """workers.ml reaching django through another portal module breaks the contract too."""
    _write_tree(tmp_path, _contract("ml-django-free"))
    (tmp_path / "workers" / "helpers.py").write_text("import django\n")
    (tmp_path / "workers" / "ml" / "images.py").write_text("from workers import helpers\n")
    broken = _lint_imports(tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "workers.helpers -> django" in broken.stdout
