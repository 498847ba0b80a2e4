"""The all-tenants bypass appears only where scripts/check_all_tenants.py allows it."""

import runpy
from pathlib import Path

CHECK = Path(__file__).resolve().parents[3] / "scripts" / "check_all_tenants.py"


def load():
    return runpy.run_path(str(CHECK))


def test_the_bypass_is_used_only_in_allowed_modules():
    assert load()["violations"]() == []


def test_it_flags_the_bypass_in_a_service(tmp_path, monkeypatch):
    check = load()
    service = tmp_path / "apps" / "billing" / "services.py"
    service.parent.mkdir(parents=True)
    service.write_text("def f(Invoice):\n    return Invoice.all_tenants.filter(paid=False)\n")
    admin = tmp_path / "apps" / "billing" / "admin.py"
    admin.write_text("def g(Invoice):\n    return Invoice.all_tenants.all()\n")
    found = check["violations"].__globals__
    monkeypatch.setitem(found, "ROOT", tmp_path)
    assert check["violations"]() == ["apps/billing/services.py:2: uses all_tenants"]
