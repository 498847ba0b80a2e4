"""Reading the mail the portal's file backend wrote (the embedded default's mail folder).

Django's file backend writes every message of one connection (and of another that reuses its
file name within the same second) into one file, each followed by a line of 79 dashes; a reader
of whole files sees only the first message of each.
"""

from __future__ import annotations

import re
import time
from email import message_from_string
from email.message import Message
from pathlib import Path

import pytest

_SEPARATOR = re.compile(r"^-{79}$", flags=re.M)


@pytest.fixture
def mail_folder(settings, tmp_path) -> Path:
    """Mail written as files into a folder of the test's own, as the embedded default does
    (pytest-django would swap in the in-memory backend)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    return tmp_path / "mail"


def sent(folder: Path) -> list[Message]:
    """Every message in `folder`, in the order of its files."""
    files = sorted(folder.iterdir()) if folder.exists() else []
    chunks = [c for path in files for c in _SEPARATOR.split(path.read_text())]
    return [message_from_string(c.lstrip("\n")) for c in chunks if c.strip()]


def body(message: Message) -> str:
    return message.get_payload(decode=True).decode()


def wait_for_message(folder: Path, to: str, timeout: float = 30) -> Message:
    """The first message to `to` in `folder`, waiting for a running stack to write it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sent(folder):
            if message["To"] == to:
                return message
        time.sleep(0.2)
    raise AssertionError(f"no message to {to} in {folder}")


def wait_for_link(folder: Path, to: str, pattern: str, timeout: float = 30) -> str:
    """The first link matching `pattern` in the first message to `to`."""
    found = re.search(pattern, body(wait_for_message(folder, to, timeout)))
    assert found, f"no link like {pattern} in the message to {to}"
    return found.group(0)
