"""The README's permission table is the one scripts/permission_table.py generates from
apps/core/permissions.py (make lint runs the same check)."""

import runpy
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "permission_table.py"


def load():
    return runpy.run_path(str(SCRIPT))


def test_the_readme_permission_table_is_up_to_date():
    script = load()
    readme = script["README"].read_text()
    wanted = script["render"](readme).splitlines()
    stale = [line for line in wanted if line not in readme.splitlines()]
    assert not stale, (
        "README.md's permission table is stale: run `python scripts/permission_table.py "
        "--write`. Missing lines:\n" + "\n".join(stale)
    )
    assert wanted == readme.splitlines(), "README.md's permission table has extra lines"


def test_it_lists_every_route_and_method_with_a_cell_per_role():
    from apps.core.permissions import PERMISSIONS

    rows = load()["table"]().splitlines()[2:]
    assert len(rows) == sum(len(methods) for methods in PERMISSIONS.values())
    delete = next(r for r in rows if r.startswith("| `api:dataset-detail`") and "DELETE" in r)
    assert delete.split(" | ")[3:7] == ["—", "own", "✓", "✓"]
