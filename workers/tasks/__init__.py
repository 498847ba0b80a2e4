"""Celery tasks: load ids, call a service, write back. Thin by design."""
