"""The reaper sends the task of a job whose message was lost, through the real broker."""

from datetime import timedelta

from django.utils import timezone

from apps.core.jobs import JobStatus, jobs_stale
from apps.datasets.models import Dataset, DatasetVersion
from workers.tasks.maintenance import jobs_reap_task


def take_messages(queue_name: str) -> list:
    """Drain a queue of the configured broker (filesystem or Redis) and return the messages."""
    from lepton_portal.celery import app

    taken = []
    with app.connection_for_write() as connection:
        queue = connection.SimpleQueue(queue_name)
        while True:
            try:
                message = queue.get(block=True, timeout=1)
            except queue.Empty:
                break
            message.ack()
            taken.append(message)
        queue.close()
    return taken


def test_it_finds_jobs_whose_worker_or_message_was_lost(tenant):
    dataset = Dataset.all_tenants.create(organization=tenant.organization, name="d")
    make = lambda n, **kw: DatasetVersion.all_tenants.create(  # noqa: E731
        organization=tenant.organization, dataset=dataset, number=n, **kw
    )
    past = timezone.now() - timedelta(hours=1)
    dead = make(1, status=JobStatus.RUNNING, lease_expires_at=past)
    alive = make(2, status=JobStatus.RUNNING, lease_expires_at=timezone.now() + timedelta(60))
    fresh = make(3, status=JobStatus.QUEUED)
    lost = make(4, status=JobStatus.QUEUED)
    DatasetVersion.all_tenants.filter(pk=lost.pk).update(updated_at=past)
    done = make(5, status=JobStatus.SUCCEEDED)
    stale = set(jobs_stale(DatasetVersion, queued_for=600))
    assert stale == {dead.pk, lost.pk}
    assert not stale & {alive.pk, fresh.pk, done.pk}


def test_it_sends_the_task_again(tenant):
    dataset = Dataset.all_tenants.create(organization=tenant.organization, name="d")
    version = DatasetVersion.all_tenants.create(
        organization=tenant.organization,
        dataset=dataset,
        number=1,
        status=JobStatus.RUNNING,
        lease_expires_at=timezone.now() - timedelta(minutes=5),
    )
    take_messages("cpu")
    assert jobs_reap_task() == 1
    messages = take_messages("cpu")
    assert [(m.headers["task"], m.headers["argsrepr"]) for m in messages] == [
        ("workers.tasks.datasets.dataset_version_ingest_task", repr((str(version.pk),)))
    ]
