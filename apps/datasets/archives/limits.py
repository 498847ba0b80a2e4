"""The limits of an uploaded archive, counted on bytes actually read, never on what headers
declare: how many entries it holds, how large each entry and the whole unpack, and the ratio
of unpacked bytes to the upload's size (a compression bomb).

apps.datasets.archives.reading reads through these counters; so do the decoding processes
for the zip entries they read themselves (the ingesting process counts what they unpacked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

from apps.core.errors import PayloadTooLarge
from apps.core.text import human_size

#: the most bytes a manifest CSV may unpack to
MANIFEST_MAX_BYTES = 32 * 1024 * 1024
#: the compression-ratio check starts once this much was unpacked: tiny archives of headers
#: and padding compress very well without being bombs
RATIO_FLOOR_BYTES = 4 * 1024 * 1024
#: bytes tarfile may read on its own for one member's headers (PAX, GNU long names)
TAR_HEADER_ALLOWANCE = 1024 * 1024
CHUNK = 256 * 1024


@dataclass(frozen=True)
class Limits:
    max_entries: int
    max_total_bytes: int
    max_entry_bytes: int
    max_ratio: float

    @classmethod
    def from_settings(cls, **overrides: Any) -> Limits:
        from django.conf import settings

        values = {
            "max_entries": settings.LEPTON_MAX_ARCHIVE_ENTRIES,
            "max_total_bytes": settings.LEPTON_MAX_ARCHIVE_BYTES,
            "max_entry_bytes": settings.LEPTON_MAX_IMAGE_BYTES,
            "max_ratio": settings.LEPTON_MAX_COMPRESSION_RATIO,
        }
        return cls(**(values | overrides))


class Budget:
    """Bytes actually unpacked from one archive, checked against the total and ratio limits."""

    def __init__(self, limits: Limits, *, archive_size: int, source_name: str) -> None:
        self.limits = limits
        self.archive_size = max(1, archive_size)
        self.source_name = source_name
        self.read = 0

    def add(self, n: int) -> None:
        self.read += n
        if self.read > self.limits.max_total_bytes:
            raise PayloadTooLarge(
                f"'{self.source_name}' unpacks to more than "
                f"{human_size(self.limits.max_total_bytes)} (counted while reading it); split "
                "it into several uploads.",
                field="file",
            )
        if self.read > RATIO_FLOOR_BYTES and self.read > self.limits.max_ratio * self.archive_size:
            raise PayloadTooLarge(
                f"'{self.source_name}' unpacks to more than {self.limits.max_ratio:g} times its "
                f"own size ({human_size(self.archive_size)}): a compression bomb, or a very "
                "compressible archive. Store images as PNG or JPEG before archiving them.",
                field="file",
            )

    def remaining(self) -> int:
        return self.limits.max_total_bytes - self.read


class CountingReader:
    """The unpacked byte stream of a tar, counted against a Budget.

    While tarfile reads headers on its own (between members) at most `header_allowance` bytes
    may pass: a PAX header or GNU long name declaring gigabytes would otherwise be read into
    memory in one piece.
    """

    def __init__(self, raw: BinaryIO, budget: Budget, source_name: str) -> None:
        self.raw = raw
        self.budget = budget
        self.source_name = source_name
        self.header_allowance: int | None = None
        self.header_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(CHUNK if size is None or size < 0 else size)
        self.budget.add(len(data))
        if self.header_allowance is not None:
            self.header_read += len(data)
            if self.header_read > self.header_allowance:
                raise PayloadTooLarge(
                    f"'{self.source_name}' has a tar header larger than "
                    f"{human_size(TAR_HEADER_ALLOWANCE)}; no real archive needs one. Create "
                    "the archive again with a standard tool (tar, 7-Zip).",
                    field="file",
                )
        return data

    def headers_begin(self, pending: int = 0) -> None:
        self.header_allowance = TAR_HEADER_ALLOWANCE + pending
        self.header_read = 0

    def headers_end(self) -> None:
        self.header_allowance = None


def read_stream(stream: Any, *, limit: int, budget: Budget | None) -> bytes:
    """Read at most `limit` bytes (raising EntryTooLarge past it), counting each chunk."""
    chunks = []
    total = 0
    while True:
        chunk = stream.read(min(CHUNK, limit + 1 - total))
        if not chunk:
            break
        total += len(chunk)
        if budget is not None:
            budget.add(len(chunk))
        chunks.append(chunk)
        if total > limit:
            raise EntryTooLarge(f"larger than {human_size(limit)} once unpacked")
    return b"".join(chunks)


def drain(stream: Any) -> None:
    while stream.read(CHUNK):
        pass


class EntryTooLarge(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def too_many_entries(
    source_name: str, limits: Limits, count: int, *, exact: bool
) -> PayloadTooLarge:
    """The refusal of an archive with more entries than `limits` allow."""
    what = f"has {count}" if exact else f"has more than {limits.max_entries}"
    return PayloadTooLarge(
        f"'{source_name}' {what} entries; the limit is {limits.max_entries}. "
        "Split it into several uploads.",
        field="file",
    )
