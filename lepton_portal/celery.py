"""The Celery application.

Embedded default: Celery's filesystem transport under LEPTON_DATA_DIR/broker, so a real worker
process runs with no server installed. Production: Redis from REDIS_URL.

The database row of each job is the source of truth; Celery only carries ids. Tasks ack late and
are rejected (re-queued) when their worker dies, and claim their row idempotently.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton_portal.settings")

app = Celery("lepton_portal")


def _configure() -> None:
    from django.conf import settings

    conf: dict = {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": "cpu",
        "task_routes": {
            "workers.tasks.training.*": {"queue": "gpu"},
            "workers.tasks.datasets.*": {"queue": "cpu"},
        },
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": True,
        "imports": ["workers.tasks.datasets", "workers.tasks.training"],
        "task_serializer": "json",
        "accept_content": ["json"],
    }
    if settings.REDIS_URL:
        conf["broker_url"] = settings.REDIS_URL
        # A training run can outlast the default hour; the row's lease, not the broker,
        # decides whether a job was abandoned.
        conf["broker_transport_options"] = {"visibility_timeout": 12 * 3600}
    else:
        folder = settings.CELERY_BROKER_DIR
        queue_dir = folder / "queue"
        processed_dir = folder / "processed"
        control_dir = folder / "control"
        for path in (queue_dir, processed_dir, control_dir):
            path.mkdir(parents=True, exist_ok=True)
        conf["broker_url"] = "filesystem://"
        conf["broker_transport_options"] = {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "processed_folder": str(processed_dir),
            "control_folder": str(control_dir),
            "store_processed": False,
        }
    app.conf.update(conf)


_configure()
