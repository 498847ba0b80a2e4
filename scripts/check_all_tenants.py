"""Fail when the all-tenants bypass is used outside the modules allowed to use it.

`Model.all_tenants` returns every organization's rows and `scoping.dangerously_all_tenants()`
lifts the scope for a block: both are for code that must see every tenant by nature. Anything
else holds its organization and uses `Model.objects` inside its scope, or
`Model.objects.for_organization(organization)`. Run by `make lint` and by the test suite
(tests/apps/core/test_all_tenants_allow_list.py).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: module (glob, from the repository root) -> why it may see every tenant
ALLOWED: dict[str, str] = {
    "apps/core/models.py": "defines the bypass manager",
    "apps/core/scoping.py": "defines dangerously_all_tenants()",
    "apps/core/jobs.py": "job claims, progress and finish address a job row by id from a worker "
    "that has no organization until the claim returns the row",
    "apps/core/job_registry.py": "enqueueing stamps the job row by id (also for the reaper)",
    "apps/core/job_reaper.py": "the reaper looks for lost jobs of every organization",
    "apps/*/admin.py": "the Django admin is for platform staff, who manage every tenant",
    "apps/core/admin.py": "the admin's shared base classes (platform staff)",
    "apps/accounts/authentication.py": "an API key is looked up before its organization is known",
}

NAMES = {"all_tenants", "dangerously_all_tenants"}
SCANNED = ("apps", "lepton_portal", "workers")


def allowed(path: Path) -> bool:
    relative = path.relative_to(ROOT)
    return any(relative.match(pattern) for pattern in ALLOWED)


def violations() -> list[str]:
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts or allowed(path):
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                name = (
                    node.attr
                    if isinstance(node, ast.Attribute)
                    else node.id
                    if isinstance(node, ast.Name)
                    else None
                )
                if name in NAMES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: uses {name}")
    return found


if __name__ == "__main__":
    problems = violations()
    for line in problems:
        print(line)
    if problems:
        print(
            "\nThe all-tenants bypass is allowed only in the modules listed in "
            "scripts/check_all_tenants.py. Use Model.objects inside the tenant scope, or "
            "Model.objects.for_organization(organization) where the organization is known.",
            file=sys.stderr,
        )
        sys.exit(1)
    print(f"all-tenants bypass: only in the {len(ALLOWED)} allowed modules")
