"""Periodic upkeep (celery beat): re-enqueue jobs whose message was lost."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def jobs_reap_task() -> int:
    """Send the task of every stale job again; the claim makes an extra delivery harmless."""
    from django.conf import settings

    from apps.core.jobs import jobs_stale
    from apps.datasets.models import DatasetVersion
    from apps.datasets.services import enqueue_ingest
    from apps.training.models import TrainingRun
    from apps.training.services import enqueue_training

    sent = 0
    for model, enqueue in ((DatasetVersion, enqueue_ingest), (TrainingRun, enqueue_training)):
        for pk in jobs_stale(model, queued_for=settings.LEPTON_JOB_REQUEUE_SECONDS):
            enqueue(pk)
            sent += 1
    if sent:
        logger.warning("re-enqueued %d stale job(s)", sent)
    return sent
