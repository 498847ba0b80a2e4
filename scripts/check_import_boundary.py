"""Fail if the ML core (workers/ml) imports Django or the portal: it must run on a GPU box alone."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

FORBIDDEN = ("django", "rest_framework", "celery", "apps", "lepton_portal", "workers.tasks")
ROOT = Path(__file__).resolve().parent.parent / "workers" / "ml"


def violations() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                    found.append(f"{path}:{node.lineno}: imports {name}")
    return found


if __name__ == "__main__":
    problems = violations()
    for line in problems:
        print(line)
    print(f"import boundary: {len(problems)} violation(s) in {ROOT}")
    sys.exit(1 if problems else 0)
