"""The Celery application; its configuration is the CELERY_* block of the Django settings.

Embedded default: Celery's filesystem transport under LEPTON_DATA_DIR/broker, so a real worker
process runs with no server installed. Production: Redis from REDIS_URL.

The database row of each job is the source of truth; Celery only carries ids. Tasks ack late and
are rejected (re-queued) when their worker dies, and claim their row idempotently.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton_portal.settings")

# Every task runs with no tenant scope at its start and leaves none behind (apps.core.scoping).
app = Celery("lepton_portal", task_cls="workers.tasks.base:ScopedTask")
# Lazy: read when the app is first used, after Django's settings are loaded.
app.config_from_object("django.conf:settings", namespace="CELERY")
