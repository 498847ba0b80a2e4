"""The reaper re-sends each lost job once, through the real broker (filesystem, or Redis in CI),
and never a job that merely waits behind a backlog."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.job_reaper import jobs_lost, jobs_reap
from apps.core.job_registry import job_enqueue, job_kind
from apps.core.jobs import JobStatus
from apps.datasets.jobs import INGEST
from apps.datasets.models import Dataset, DatasetVersion
from apps.training.jobs import TRAIN
from workers.tasks.maintenance import jobs_reap_task

INGEST_TASK = "workers.tasks.datasets.dataset_version_ingest_task"


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


@pytest.fixture
def empty_queues():
    take_messages("cpu")
    yield
    take_messages("cpu")


@pytest.fixture
def make_version(tenant):
    dataset = Dataset.all_tenants.create(organization=tenant.organization, name="d")
    numbers = iter(range(1, 100))

    def make(**fields):
        return DatasetVersion.all_tenants.create(
            organization=tenant.organization, dataset=dataset, number=next(numbers), **fields
        )

    return make


def long_ago(*versions):
    """As if every version's message went out an hour ago (longer than the requeue time)."""
    past = timezone.now() - timedelta(hours=1)
    DatasetVersion.all_tenants.filter(pk__in=[v.pk for v in versions]).update(
        sent_at=past, updated_at=past
    )


def sent(messages) -> list[tuple[str, str]]:
    return sorted((m.headers["task"], m.headers["argsrepr"]) for m in messages)


def test_every_kind_is_declared_once_with_its_task_and_queue():
    assert job_kind("dataset_version.ingest") == INGEST
    assert (INGEST.task, INGEST.queue, INGEST.model_class) == (INGEST_TASK, "cpu", DatasetVersion)
    assert (TRAIN.queue, TRAIN.queue_field) == ("gpu", "queue")


def test_enqueue_records_when_and_under_which_id_it_sent(make_version, empty_queues):
    version = make_version()
    task_id = job_enqueue(INGEST, version.pk)
    version.refresh_from_db()
    assert version.task_id == task_id and version.sent_at is not None
    [message] = take_messages("cpu")
    assert message.headers["id"] == task_id
    assert message.headers["task"] == INGEST_TASK


def test_a_backlog_waiting_longer_than_the_requeue_time_gets_no_extra_messages(
    make_version, empty_queues
):
    backlog = [make_version() for _ in range(3)]
    for version in backlog:
        job_enqueue(INGEST, version.pk)
    long_ago(*backlog)
    for _ in range(5):
        assert jobs_reap() == 0
    assert len(take_messages("cpu")) == 3


def test_a_lost_message_is_sent_again_once(make_version, empty_queues):
    versions = [make_version() for _ in range(2)]
    for version in versions:
        job_enqueue(INGEST, version.pk)
    take_messages("cpu")  # the broker lost both (a restart without persistence, say)
    long_ago(*versions)
    assert jobs_reap_task() == 2
    for _ in range(4):  # the measurement: 2 lost messages had become 9 sends
        assert jobs_reap() == 0
    long_ago(*versions)  # even an hour later: the new messages are in the queue
    assert jobs_reap() == 0
    assert sent(take_messages("cpu")) == sorted((INGEST_TASK, repr((str(v.pk),))) for v in versions)


def test_a_job_whose_worker_died_is_sent_again_once_per_loss(make_version, empty_queues):
    version = make_version()
    job_enqueue(INGEST, version.pk)
    take_messages("cpu")  # a worker took it, claimed the job, then died
    DatasetVersion.all_tenants.filter(pk=version.pk).update(
        status=JobStatus.RUNNING,
        sent_at=timezone.now() - timedelta(minutes=8),
        lease_expires_at=timezone.now() - timedelta(minutes=5),
    )
    assert jobs_lost(INGEST) == [version.pk]
    assert jobs_reap() == 1
    assert jobs_reap() == 0
    assert sent(take_messages("cpu")) == [(INGEST_TASK, repr((str(version.pk),)))]
    # The next worker claims it (a new lease) and dies too: one more send.
    DatasetVersion.all_tenants.filter(pk=version.pk).update(lease_expires_at=timezone.now())
    assert jobs_reap() == 1
    assert jobs_reap() == 0
    # That message is lost as well, and nobody claims the job: sent again after the requeue
    # time, once.
    take_messages("cpu")
    long_ago(version)
    assert jobs_reap() == 1
    assert jobs_reap() == 0


def test_it_leaves_live_fresh_and_finished_jobs_alone(make_version, empty_queues):
    alive = make_version(
        status=JobStatus.RUNNING, lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    fresh = make_version()
    job_enqueue(INGEST, fresh.pk)
    take_messages("cpu")
    done = make_version(status=JobStatus.SUCCEEDED)
    long_ago(alive, done)
    assert jobs_lost(INGEST) == []
    assert jobs_reap() == 0
