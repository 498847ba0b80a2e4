"""Lepton Portal: Django project package (settings, URLs, Celery app)."""

from lepton_portal.celery import app as celery_app

__all__ = ["celery_app"]
