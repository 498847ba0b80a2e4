"""Reading a dataset item's stored image and thumbnail back.

An item's file is either a whole file of the portal's storage, or a slice of a pack file that
holds the images decoded together at ingestion (see apps.datasets.models.DatasetItem and
apps.datasets.canonical.Destination). Everything that reads item images (downloads, the
gallery, training) goes through here, so none of it needs to know which.
"""

from __future__ import annotations

import io
import mimetypes
from typing import Any, BinaryIO, Literal

from django.core.files.storage import Storage, default_storage

from apps.datasets.models import DatasetItem

#: bytes read from the storage at a time through a slice
BUFFER = 64 * 1024

Which = Literal["image", "thumbnail"]


class StoredSlice(io.RawIOBase):
    """`length` bytes at `offset` of an open binary file, as a file of their own: reads stop at
    the slice's end, seek() and tell() count from its start (Pillow seeks in what it opens)."""

    def __init__(self, handle: Any, offset: int, length: int) -> None:
        super().__init__()
        self._handle = handle
        self._offset = offset
        self._length = length
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._length - self._position
        if left <= 0:
            return 0
        view = memoryview(buffer).cast("B")[:left]
        self._handle.seek(self._offset + self._position)
        read = self._handle.readinto(view)
        if not read:
            raise OSError(
                f"the stored file ends {left} bytes before the image does: it was cut short"
            )
        self._position += read
        return read

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


def open_stored(
    name: str, offset: int | None, length: int | None, *, storage: Storage | None = None
) -> BinaryIO:
    """A file object of stored bytes: the whole file `name`, or its slice when `offset` is set.

    Raises OSError when the file is missing (and, on reading, when a pack was cut short).
    """
    handle = (storage or default_storage).open(name, "rb")
    if offset is None:
        return handle
    return io.BufferedReader(StoredSlice(handle, offset, length or 0), buffer_size=BUFFER)


def item_location(item: DatasetItem, which: Which = "image") -> tuple[str, int | None, int | None]:
    """(storage name, offset, length) of the item's canonical image or its thumbnail."""
    if which == "thumbnail":
        return item.thumbnail.name, item.thumbnail_offset, item.thumbnail_length
    return item.file.name, item.file_offset, item.file_length


def item_open(item: DatasetItem, which: Which = "image") -> BinaryIO:
    """The item's canonical PNG ("image") or its thumbnail as a file object (see open_stored)."""
    name, offset, length = item_location(item, which)
    return open_stored(name, offset, length, storage=item.file.storage)


def item_read(item: DatasetItem, which: Which = "image") -> bytes:
    """The bytes of the item's canonical PNG or its thumbnail."""
    with item_open(item, which) as handle:
        return handle.read()


def item_thumbnail_type(item: DatasetItem) -> str | None:
    """The media type of the item's stored thumbnail ("image/webp", "image/png"), if any.

    In a pack, a thumbnail at the image's own place is the canonical PNG (the image is small
    enough); any other is the WebP ingestion made. A whole file says it by its name.
    """
    if not item.thumbnail:
        return None
    if item.thumbnail_offset is None:
        return mimetypes.guess_type(item.thumbnail.name)[0]
    if (item.thumbnail.name, item.thumbnail_offset) == (item.file.name, item.file_offset):
        return "image/png"
    return "image/webp"
