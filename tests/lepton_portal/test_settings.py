"""Production settings, as the README's Operations section shows them, pass Django's deploy
checklist, and HTTPS responses carry HSTS for the host and its subdomains.

Settings are read from the environment once, at start, so each case runs in a fresh
interpreter with that environment (and a data folder of its own)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

README_PRODUCTION = {
    "LEPTON_SECURE": "true",
    "LEPTON_ALLOWED_HOSTS": "portal.example.com",
}
BEHIND_A_TLS_PROXY = README_PRODUCTION | {
    "LEPTON_TRUSTED_PROXIES": "1",
    "LEPTON_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "LEPTON_CSRF_TRUSTED_ORIGINS": "https://portal.example.com",
}


def production_env(data_dir: Path, overrides: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEPTON_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="lepton_portal.settings",
        LEPTON_DATA_DIR=str(data_dir),
        LEPTON_SECRET_KEY=secrets.token_urlsafe(50),
        **overrides,
    )
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("overrides", [README_PRODUCTION, BEHIND_A_TLS_PROXY])
def test_check_deploy_is_clean_in_production(tmp_path, overrides):
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production_env(tmp_path, overrides),
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_check_deploy_would_complain_without_a_secret_key(tmp_path):
    """The test above proves something: the check does fail on a bad production setting."""
    env = production_env(tmp_path, README_PRODUCTION)
    env["LEPTON_SECRET_KEY"] = "short"
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode != 0
    assert "security.W009" in result.stderr


HEADERS = """
import django
django.setup()
from django.test import Client
response = Client().get("/static/css/app.css", secure=True, HTTP_HOST="portal.example.com")
print(response.status_code)
for name in ("Strict-Transport-Security", "Permissions-Policy", "Content-Security-Policy"):
    print(response.headers.get(name, ""))
"""


def test_https_responses_carry_hsts_with_subdomains(tmp_path):
    result = run(["-c", HEADERS], production_env(tmp_path, README_PRODUCTION))
    assert result.returncode == 0, result.stderr
    status, hsts, permissions, csp = result.stdout.splitlines()[-4:]
    assert status == "200"
    assert hsts == "max-age=31536000; includeSubDomains"
    assert "camera=()" in permissions and "default-src 'self'" in csp


def test_preload_is_the_operators_choice(tmp_path):
    env = production_env(tmp_path, README_PRODUCTION | {"LEPTON_HSTS_PRELOAD": "true"})
    result = run(["-c", HEADERS], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-3] == "max-age=31536000; includeSubDomains; preload"


def test_plain_http_development_sends_no_hsts(tmp_path):
    result = run(
        ["-c", HEADERS.replace("secure=True", "secure=False")],
        production_env(tmp_path, {"LEPTON_ALLOWED_HOSTS": "portal.example.com"}),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-3] == ""


def test_earlier_secret_keys_are_read_from_the_environment(tmp_path):
    old = [secrets.token_urlsafe(50), secrets.token_urlsafe(50)]
    env = production_env(tmp_path, {"LEPTON_SECRET_KEY_FALLBACKS": ",".join(old)})
    result = run(
        [
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(','.join(settings.SECRET_KEY_FALLBACKS))",
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ",".join(old)
