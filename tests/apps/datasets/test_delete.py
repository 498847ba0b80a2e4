"""Deleting a dataset: rows and files gone, the quota freed, images other datasets share kept
and counted, and refusals (another organization, another member's dataset, an ingestion under
way, models trained on it) that leave everything as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from apps.accounts.services import api_key_create
from apps.audit.models import AuditEvent
from apps.core.jobs import JobStatus
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion
from apps.datasets.services import dataset_create, dataset_version_ingest
from apps.datasets.storage import organization_storage_used
from apps.datasets.stored import item_read
from apps.datasets.versions import dataset_version_derive
from apps.tenants.models import Membership, Role
from tests.conftest import PASSWORD, zip_upload
from tests.support.archives import class_images, zip_bytes


def org_files(organization_id) -> set[str]:
    folder = Path(settings.MEDIA_ROOT, f"orgs/{organization_id}")
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def ingested(tenant, name: str, data: bytes, user=None) -> DatasetVersion:
    version = dataset_create(
        organization=tenant.organization,
        user=user or tenant.user,
        name=name,
        upload=zip_upload(data),
    )
    version = dataset_version_ingest(version_id=version.pk)
    assert version.status == JobStatus.SUCCEEDED, version.message
    return version


@pytest.fixture
def colleague(client, tenant):
    """A plain member of the tenant's organization, with an API key."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(email="member@acme.example", password=PASSWORD)
    Membership.objects.create(user=user, organization=tenant.organization, role=Role.MEMBER)
    _key, raw = api_key_create(organization=tenant.organization, user=user, name="member")
    return user, {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_the_owner_deletes_a_dataset_with_every_version_and_file(
    api, tenant, ready_version, django_capture_on_commit_callbacks
):
    derived = dataset_version_ingest(
        version_id=dataset_version_derive(
            base=ready_version,
            user=tenant.user,
            add_archive=zip_upload(zip_bytes(class_images(2, seed=5)), name="more.zip"),
        ).pk
    )
    assert derived.status == JobStatus.SUCCEEDED and derived.parent_id == ready_version.pk
    organization = tenant.organization
    assert organization_storage_used(organization=organization) > 0
    assert org_files(organization.pk)

    # The files go when the transaction commits, as it does after a request.
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"/api/v1/datasets/{ready_version.dataset_id}/")

    assert response.status_code == 204, response.content
    assert not Dataset.all_tenants.filter(pk=ready_version.dataset_id).exists()
    assert not DatasetVersion.all_tenants.filter(organization=organization).exists()
    assert not DatasetItem.all_tenants.filter(organization=organization).exists()
    assert org_files(organization.pk) == set()
    assert organization_storage_used(organization=organization) == 0
    event = AuditEvent.all_tenants.get(organization=organization, action="dataset.delete")
    assert event.data["name"] == "shapes" and event.data["versions"] == 2
    assert event.data["freed_bytes"] == ready_version.source_size + ready_version.stored_bytes + (
        derived.source_size + derived.stored_bytes
    )
    assert api.get(f"/api/v1/datasets/{ready_version.dataset_id}/").status_code == 404


def test_another_organization_gets_404_and_nothing_is_deleted(client, outsider, ready_version):
    response = client.delete(f"/api/v1/datasets/{ready_version.dataset_id}/", **outsider.auth)
    assert response.status_code == 404
    assert DatasetItem.all_tenants.filter(version=ready_version).count() == ready_version.item_count
    assert all(item_read(i) for i in DatasetItem.all_tenants.filter(version=ready_version))


def test_a_member_deletes_their_own_dataset_but_not_anothers(client, tenant, colleague):
    user, auth = colleague
    theirs = ingested(tenant, "theirs", zip_bytes(class_images(3, seed=1)), user=user)
    owners = ingested(tenant, "owner's", zip_bytes(class_images(3, seed=2)))

    refused = client.delete(f"/api/v1/datasets/{owners.dataset_id}/", **auth)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == (
        "Only the member who created the dataset 'owner's', or an admin, can delete it."
    )
    assert Dataset.all_tenants.filter(pk=owners.dataset_id).exists()
    assert client.delete(f"/api/v1/datasets/{theirs.dataset_id}/", **auth).status_code == 204
    assert not Dataset.all_tenants.filter(pk=theirs.dataset_id).exists()


def test_a_dataset_being_ingested_is_not_deleted(api, tenant):
    queued = dataset_create(
        organization=tenant.organization, user=tenant.user, name="busy", upload=zip_upload()
    )
    response = api.delete(f"/api/v1/datasets/{queued.dataset_id}/")
    assert response.status_code == 409
    assert "still being ingested" in response.json()["error"]["message"]
    assert DatasetVersion.all_tenants.filter(pk=queued.pk).exists()
    assert Path(settings.MEDIA_ROOT, queued.source.name).exists()


def test_a_dataset_models_were_trained_on_is_not_deleted(api, tenant, ready_version):
    from apps.training.services import model_config_create

    model_config_create(
        organization=tenant.organization,
        user=tenant.user,
        name="Shape sorter",
        template="leptonnet",
        dataset_version=ready_version,
    )
    files = org_files(tenant.organization.pk)

    response = api.delete(f"/api/v1/datasets/{ready_version.dataset_id}/")

    assert response.status_code == 409
    assert "the models 'Shape sorter' were trained on it" in response.json()["error"]["message"]
    assert DatasetItem.all_tenants.filter(version=ready_version).count() == ready_version.item_count
    assert org_files(tenant.organization.pk) == files


def test_images_another_dataset_shares_stay_and_are_counted_there(
    api, tenant, django_capture_on_commit_callbacks
):
    images = zip_bytes(class_images(4, seed=9))
    first = ingested(tenant, "first", images)
    again = ingested(tenant, "again", images)  # the same images: stored once, in first's packs
    assert again.stored_bytes == 0
    packs = {i.file.name for i in DatasetItem.all_tenants.filter(version=first)}
    assert {i.file.name for i in DatasetItem.all_tenants.filter(version=again)} == packs
    used = organization_storage_used(organization=tenant.organization)

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/datasets/{first.dataset_id}/").status_code == 204

    again.refresh_from_db()
    pack_bytes = sum(Path(settings.MEDIA_ROOT, name).stat().st_size for name in packs)
    assert again.stored_bytes == pack_bytes  # what stays on disk is still counted
    assert organization_storage_used(organization=tenant.organization) == (used - first.source_size)
    assert {name.split("/")[-2] for name in packs} == {str(first.pk)}
    for item in DatasetItem.all_tenants.filter(version=again):
        assert item_read(item).startswith(b"\x89PNG")
    assert org_files(tenant.organization.pk) == {n.split("/", 2)[2] for n in packs} | {
        again.source.name.split("/", 2)[2]
    }

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/datasets/{again.dataset_id}/").status_code == 204
    assert org_files(tenant.organization.pk) == set()
    assert organization_storage_used(organization=tenant.organization) == 0


def test_the_page_deletes_once_the_name_is_typed(client, tenant, ready_version):
    client.force_login(tenant.user)
    url = reverse("datasets:delete", kwargs={"pk": ready_version.dataset_id})
    page = client.get(reverse("datasets:version", kwargs={"pk": ready_version.pk}))
    assert f'action="{url}"' in page.content.decode()
    assert client.get(url).status_code == 405

    wrong = client.post(url, {"confirm_name": "shape"}, follow=True)
    assert "Type the name, shapes, exactly as shown" in wrong.content.decode()
    assert Dataset.all_tenants.filter(pk=ready_version.dataset_id).exists()

    done = client.post(url, {"confirm_name": "shapes"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("datasets:list")
    assert "Deleted &#x27;shapes&#x27; (1 version):" in done.content.decode()
    assert not Dataset.all_tenants.filter(pk=ready_version.dataset_id).exists()


def test_the_page_shows_why_a_deletion_was_refused(client, tenant):
    queued = dataset_create(
        organization=tenant.organization, user=tenant.user, name="busy", upload=zip_upload()
    )
    client.force_login(tenant.user)
    url = reverse("datasets:delete", kwargs={"pk": queued.dataset_id})
    response = client.post(url, {"confirm_name": "busy"}, follow=True)
    assert "Version 1 of &#x27;busy&#x27; is still being ingested" in response.content.decode()
    assert Dataset.all_tenants.filter(pk=queued.dataset_id).exists()


def test_another_organizations_page_request_gets_404(client, outsider, ready_version):
    client.force_login(outsider.user)
    url = reverse("datasets:delete", kwargs={"pk": ready_version.dataset_id})
    assert client.post(url, {"confirm_name": "shapes"}).status_code == 404
    assert Dataset.all_tenants.filter(pk=ready_version.dataset_id).exists()


@pytest.mark.parametrize("deleted_meanwhile", [False, True])
def test_an_ingestion_reusing_images_of_a_dataset_deleted_meanwhile_keeps_its_own_copy(
    tenant, django_capture_on_commit_callbacks, deleted_meanwhile
):
    """The window between an ingestion finding an image stored by another dataset and writing
    its rows: a deletion of that dataset then sends the rows back to the ingestion's own copy."""
    from django.db import transaction

    from apps.core.jobs import ProgressReporter
    from apps.datasets.deletion import dataset_delete
    from apps.datasets.ingest.rows import ItemRow
    from apps.datasets.ingest.run import Ingestion

    first = ingested(tenant, "first", zip_bytes(class_images(2, seed=4)))
    item = DatasetItem.all_tenants.filter(version=first).first()
    png = item_read(item)
    later = dataset_create(
        organization=tenant.organization, user=tenant.user, name="later", upload=zip_upload()
    )
    run = Ingestion(version=later, reporter=ProgressReporter(later))
    own = f"{run.packs_folder}/{run.destination.pack_name(0)}"
    Path(settings.MEDIA_ROOT, own).parent.mkdir(parents=True)
    Path(settings.MEDIA_ROOT, own).write_bytes(png)
    own_location = (own, 0, len(png), own, 0, len(png))
    row = ItemRow(
        *(item.file.name, item.file_offset, item.file_length),
        *(item.thumbnail.name, item.thumbnail_offset, item.thumbnail_length),
        original_name="a.png",
        label=item.label,
        split=item.split,
        width=item.width,
        height=item.height,
        sha256=item.sha256,
        original_format="PNG",
        original_bytes=len(png),
    )
    run.rows, run.kept, run.new, run.packs = (
        [row],
        {item.sha256: row},
        {item.sha256},
        {own: len(png)},
    )
    run.reused = {item.sha256: (first.pk, own_location)}

    if deleted_meanwhile:
        with django_capture_on_commit_callbacks(execute=True):
            dataset_delete(dataset=first.dataset, user=tenant.user, role=Role.OWNER)
        assert not Path(settings.MEDIA_ROOT, item.file.name).exists()
    with transaction.atomic():
        run.confirm_reused()

    if deleted_meanwhile:
        assert (row.file, row.file_offset, row.file_length) == (own, 0, len(png))
        assert run.unused_packs() == [] and run.stored_bytes(run.unused_packs()) == len(png)
    else:
        assert row.file == item.file.name and row.file_offset == item.file_offset
        assert run.unused_packs() == [own] and run.stored_bytes(run.unused_packs()) == 0
    stored = Path(settings.MEDIA_ROOT, row.file).read_bytes()
    assert stored[row.file_offset : row.file_offset + row.file_length] == png
