"""`manage.py serve` (what `make run` starts) says where the portal's email goes."""

from __future__ import annotations

from apps.core.management.commands.serve import _mail_destination


def test_it_names_the_mail_folder_of_the_embedded_default(settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    assert _mail_destination() == f"written as files into {tmp_path / 'mail'}"


def test_it_names_the_smtp_server_when_one_is_set(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "smtp.example.com", 587
    assert _mail_destination() == "sent through smtp.example.com:587"
