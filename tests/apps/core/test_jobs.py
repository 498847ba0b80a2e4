from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.jobs import MAX_ATTEMPTS, JobBusy, JobStatus, ProgressReporter, job_claim
from apps.datasets.models import Dataset, DatasetVersion


@pytest.fixture
def version(tenant):
    dataset = Dataset.all_tenants.create(organization=tenant.organization, name="d")
    return DatasetVersion.all_tenants.create(
        organization=tenant.organization, dataset=dataset, number=1
    )


def test_it_claims_a_queued_job_once(version):
    claimed = job_claim(DatasetVersion, version.pk)
    assert claimed.status == JobStatus.RUNNING
    assert claimed.attempts == 1
    assert claimed.lease_expires_at > timezone.now()
    with pytest.raises(JobBusy) as busy:
        job_claim(DatasetVersion, version.pk)
    assert busy.value.retry_in > 0


def test_it_reclaims_a_job_whose_lease_ran_out(version):
    job_claim(DatasetVersion, version.pk)
    DatasetVersion.all_tenants.filter(pk=version.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    again = job_claim(DatasetVersion, version.pk)
    assert again is not None
    assert again.attempts == 2


def test_it_does_nothing_for_finished_or_missing_jobs(version):
    DatasetVersion.all_tenants.filter(pk=version.pk).update(status=JobStatus.SUCCEEDED)
    assert job_claim(DatasetVersion, version.pk) is None
    assert job_claim(DatasetVersion, "00000000-0000-0000-0000-000000000000") is None


def test_it_fails_a_job_claimed_too_often(version):
    DatasetVersion.all_tenants.filter(pk=version.pk).update(attempts=MAX_ATTEMPTS)
    assert job_claim(DatasetVersion, version.pk) is None
    version.refresh_from_db()
    assert version.status == JobStatus.FAILED
    assert str(MAX_ATTEMPTS) in version.message
    assert version.error


def test_it_throttles_progress_writes_and_renews_the_lease(version):
    job = job_claim(DatasetVersion, version.pk)
    first_lease = job.lease_expires_at
    reporter = ProgressReporter(job, interval=3600)
    assert reporter.report(progress=0.1)
    assert not reporter.report(progress=0.2)
    assert reporter.report(progress=0.3, force=True)
    job.refresh_from_db()
    assert job.progress == 0.3
    assert reporter.writes == 2
    assert job.lease_expires_at >= first_lease


def test_it_does_not_write_progress_into_a_finished_job(version):
    job = job_claim(DatasetVersion, version.pk)
    DatasetVersion.all_tenants.filter(pk=version.pk).update(status=JobStatus.CANCELLED)
    ProgressReporter(job, interval=0).report(progress=0.9)
    job.refresh_from_db()
    assert job.progress == 0.0
