"""Where an ingestion stores images: pack files the decoding processes write on local storage,
or whole content-addressed files, one per image and organization, on an object store."""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage

from apps.datasets.canonical import Destination, write_file_once
from apps.datasets.models import DatasetVersion


def blobs_folder(organization_id: Any) -> str:
    return f"orgs/{organization_id}/blobs"


def thumbs_folder(organization_id: Any) -> str:
    return f"orgs/{organization_id}/thumbs"


def packs_folder(organization_id: Any, version_id: Any) -> str:
    return f"orgs/{organization_id}/packs/{version_id}"


def pack_destination(version: DatasetVersion) -> Destination | None:
    """Where the decoding processes write this attempt's packs, on local storage; None on an
    object store (S3), where they send the bytes back and store_once() keeps each image."""
    storage = default_storage
    if not isinstance(storage, FileSystemStorage):
        return None
    # path() refuses names that would leave MEDIA_ROOT. An attempt's packs are named by the
    # attempt: a re-run never writes into a file an earlier one left.
    return Destination(
        folder=storage.path(packs_folder(version.organization_id, version.pk)),
        prefix=f"a{version.attempts}-",
        file_mode=storage.file_permissions_mode,
    )


def store_once(name: str, data: bytes | bytearray) -> bool:
    """Store content-addressed bytes under `name` unless they are there already; whether
    this call stored them (an ingestion that fails deletes what it stored)."""
    storage = default_storage
    if isinstance(storage, FileSystemStorage):
        # path() refuses names that would leave MEDIA_ROOT
        return write_file_once(storage.path(name), data, mode=storage.file_permissions_mode)
    # Object stores (S3) write whole objects; only the name must not be changed.
    if storage.exists(name):
        return False
    saved = storage.save(name, ContentFile(data))
    if saved != name:
        # Another worker stored the same content in the meantime; its copy is as good.
        storage.delete(saved)
        return False
    return True


def delete_files(names: list[str]) -> None:
    """Delete whole files of the storage by name (an ingestion that failed stored them)."""
    for name in names:
        with contextlib.suppress(OSError, NotImplementedError):
            default_storage.delete(name)


def delete_packs(names: list[str]) -> None:
    """Delete packs of local storage by name (no row points into them)."""
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(default_storage.path(name))


def remove_packs(destination: Destination | None) -> None:
    """Delete every pack of a version (an earlier attempt's, or a failed one's)."""
    if destination is not None:
        shutil.rmtree(destination.folder, ignore_errors=True)
