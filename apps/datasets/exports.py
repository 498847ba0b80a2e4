"""Files the portal sends back: item images and thumbnails, and whole versions as downloads.

Callers look the item or version up in the tenant's scope first; nothing here checks access.

A version download is streamed. zipfile writes into a small in-memory sink that the response's
generator drains after every chunk, so the first bytes leave at once and memory holds one chunk
whatever the size of the dataset, with nothing written to disk. A SpooledTemporaryFile would
give a Content-Length, but it would spill the whole archive to disk before the first byte and
keep the client waiting meanwhile. zipfile writes to a non-seekable stream with data
descriptors, which every unzip reads. The canonical PNGs hold their pixels uncompressed (see
apps.datasets.canonical), so they are deflated here, at zlib's fastest level, as the manifest.
"""

from __future__ import annotations

import csv
import io
import logging
import mimetypes
import posixpath
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Any

from django.core.cache import cache
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from PIL import Image

from apps.core import csv_safe
from apps.core.errors import Conflict
from apps.datasets.canonical import THUMBNAIL_SIDE
from apps.datasets.models import DatasetItem, DatasetKind, DatasetVersion
from apps.datasets.stored import item_open, item_thumbnail_type, open_stored

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
#: image types a stored thumbnail may be served as; anything else is rendered again
SERVABLE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
MANIFEST_HEADER = ("file", "label", "split", "sha256", "original_name")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_UNSAFE = set('/\\:*?"<>|')

# --- single items -------------------------------------------------------------------------


def _render_thumbnail(item: DatasetItem) -> bytes:
    """A JPEG of the canonical image, longest side THUMBNAIL_SIDE (for items made without one)."""
    with item_open(item) as handle, Image.open(handle) as image:
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _cached_thumbnail(item: DatasetItem) -> bytes:
    # Items never change (versions are immutable), so the id and the content hash name it.
    key = f"lepton:thumbnail:{item.pk}:{item.sha256[:16]}:{THUMBNAIL_SIDE}"
    data = cache.get(key)
    if data is None:
        data = _render_thumbnail(item)
        cache.set(key, data, timeout=7 * 24 * 3600)
    return data


def _stored_thumbnail(item: DatasetItem) -> HttpResponse | None:
    """The thumbnail made at ingestion, when there is one of a type fit to serve."""
    stored_type = item_thumbnail_type(item)
    if stored_type not in SERVABLE_TYPES:
        return None
    try:
        handle = item_open(item, "thumbnail")
    except OSError:
        logger.warning("dataset item %s: its thumbnail is missing from storage", item.pk)
        return None
    return FileResponse(handle, content_type=stored_type)


def _private_file_headers(response: HttpResponse, etag: str) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    # Another member of the organization may share the browser, never a shared cache.
    response["Cache-Control"] = "private, max-age=86400"
    response["ETag"] = etag
    return response


def item_file_response(request: HttpRequest, item: DatasetItem, which: str) -> HttpResponse:
    """The item's thumbnail ("thumbnail") or canonical image ("image") as an HTTP response."""
    etag = f'"{item.sha256[:32]}-{which}"'
    if etag in request.headers.get("If-None-Match", ""):
        return _private_file_headers(HttpResponse(status=304), etag)
    stem = posixpath.splitext(posixpath.basename(item.original_name))[0] or "image"
    try:
        if which == "image":
            handle = item_open(item)
            response: HttpResponse = FileResponse(handle, content_type="image/png")
            filename = f"{stem}.png"
        else:
            response = _stored_thumbnail(item) or HttpResponse(
                _cached_thumbnail(item), content_type="image/jpeg"
            )
            filename = f"{stem}-thumbnail{mimetypes.guess_extension(response['Content-Type'])}"
    except OSError:
        logger.warning("dataset item %s: its file is missing from storage", item.pk)
        raise Http404("The image file is missing.")
    response["Content-Disposition"] = content_disposition_header(False, filename)
    return _private_file_headers(response, etag)


# --- whole versions -----------------------------------------------------------------------


def _safe_part(text: str, fallback: str = "_") -> str:
    """A path component for the archive: any script kept, separators and control chars not."""
    cleaned = "".join("_" if c in _UNSAFE or ord(c) < 32 else c for c in text).strip()
    return cleaned.lstrip(".")[:120] or fallback


def archive_name(label: str, original_name: str, taken: set[str]) -> str:
    """<label>/<name>.png, unique in the archive even where names differ only in case."""
    stem = posixpath.splitext(posixpath.basename(original_name.replace("\\", "/")))[0]
    folder, stem = _safe_part(label), _safe_part(stem, "image")
    name, n = f"{folder}/{stem}.png", 1
    while name.casefold() in taken:
        n += 1
        name = f"{folder}/{stem}-{n}.png"
    taken.add(name.casefold())
    return name


class _Sink(io.RawIOBase):
    """A write-only stream whose bytes the generator takes away (zipfile writes into it)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _deflated(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, _ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = 1  # what ZipFile(compresslevel=1) sets on the entries it names itself
    return info


def version_zip_stream(version: DatasetVersion) -> Iterator[bytes]:
    """The version's canonical images under <label>/<name>.png, then manifest.csv."""
    # The generator runs after the view has returned, outside the request's tenant scope: the
    # version was looked up in that scope, and its items are read by its id only.
    items = (
        DatasetItem.objects.for_organization(version.organization_id)
        .filter(version_id=version.pk)
        .order_by("label", "original_name", "pk")
        .values_list(
            "file", "file_offset", "file_length", "label", "split", "sha256", "original_name"
        )
    )
    storage = DatasetItem._meta.get_field("file").storage
    sink = _Sink()
    taken: set[str] = set()
    with (
        tempfile.SpooledTemporaryFile(max_size=1024 * 1024, mode="w+", encoding="utf-8") as rows,
        zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive,
    ):
        csv_safe.write_rows(rows, [MANIFEST_HEADER])
        for file_name, offset, length, label, split, sha256, original_name in items.iterator(
            chunk_size=500
        ):
            name = archive_name(label, original_name, taken)
            try:
                source = open_stored(file_name, offset, length, storage=storage)
            except OSError:
                logger.warning("version %s: %s is missing from storage", version.pk, file_name)
                continue
            with source, archive.open(_deflated(name), "w") as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    yield sink.take()
            csv_safe.write_rows(rows, [(name, label, split, sha256, original_name)])
            yield sink.take()
        rows.seek(0)
        with archive.open(_deflated("manifest.csv"), "w") as target:
            while text := rows.read(CHUNK):
                target.write(text.encode("utf-8"))
                yield sink.take()
    yield sink.take()  # the central directory, written when the archive closes


def version_csv_stream(version: DatasetVersion) -> Iterator[bytes]:
    """A tabular version's canonical CSV, every cell neutralised for spreadsheets."""
    with version.data_file.storage.open(version.data_file.name, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        buffer = io.StringIO()
        for row in csv.reader(text):
            csv_safe.write_rows(buffer, [row])
            if buffer.tell() >= CHUNK:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode("utf-8")


def version_download_response(version: DatasetVersion) -> StreamingHttpResponse:
    """The version as a streamed download: a zip of images + manifest, or a tabular CSV."""
    if not version.is_ready:
        raise Conflict(
            f"Version {version.number} of '{version.dataset.name}' is not ready "
            f"({version.get_status_display().lower()}); it can be downloaded once its "
            "ingestion has succeeded."
        )
    base = _safe_part(f"{version.dataset.name}-v{version.number}", "dataset")
    if version.dataset.kind == DatasetKind.TABULAR:
        if not version.data_file:
            raise Conflict("This version has no data file to download.")
        response = StreamingHttpResponse(
            version_csv_stream(version), content_type="text/csv; charset=utf-8"
        )
        filename = f"{base}.csv"
    else:
        response = StreamingHttpResponse(
            version_zip_stream(version), content_type="application/zip"
        )
        filename = f"{base}.zip"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-cache"
    return response
