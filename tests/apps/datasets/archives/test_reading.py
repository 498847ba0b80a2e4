"""Reading archives: zip and tar by content whatever their name, refusals that name the file,
plain zip entries read from a mapped file (apps.datasets.archives.reading, .zip_entries)."""

from __future__ import annotations

import bz2
import gzip
import io
import tarfile
import zipfile

import pytest

from apps.core.errors import InvalidInput
from apps.datasets.archives import Skipped, inspect_archive
from tests.apps.datasets.archives.readers import (
    ARCHIVES,
    GOOD,
    reader,
    scan,
)
from tests.support.archives import (
    shape,
    tar_bytes,
    zip_bytes,
)

# --- kinds, by content --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ARCHIVES)
def test_it_reads_every_kind_whatever_the_name_says(kind):
    data = ARCHIVES[kind](GOOD)
    archive = reader(data, name="misleading.zip" if "tar" in kind else "misleading.tgz")
    assert archive.kind == ("tar" if "tar" in kind else "zip")
    read = list(archive.read(archive.scan()))
    assert [(e.name, e.label) for e, _data in read] == [
        (name, name.split("/")[0]) for name, _ in GOOD
    ]
    assert [data for _e, data in read] == [data for _name, data in GOOD]


def test_inspect_archive_answers_the_kind_and_rewinds():
    for data, kind in ((zip_bytes(GOOD), "zip"), (tar_bytes(GOOD, gz=True), "tar")):
        handle = io.BytesIO(data)
        assert inspect_archive(handle, max_entries=100, source_name="a") == kind
        assert handle.tell() == 0


def test_an_old_tar_without_magic_is_still_a_tar():
    data = bytearray(tar_bytes(GOOD, fmt=tarfile.USTAR_FORMAT))
    for at in range(0, len(data) - 512, 512):
        if data[at + 257 : at + 262] == b"ustar":
            # A V7 header: no magic, and its checksum recomputed without it.
            data[at + 257 : at + 265] = b"\0" * 8
            data[at + 148 : at + 156] = b" " * 8
            checksum = sum(data[at : at + 512])
            data[at + 148 : at + 156] = f"{checksum:06o}\0 ".encode()
    assert reader(bytes(data)).kind == "tar"
    assert len(scan(bytes(data)).entries) == len(GOOD)


@pytest.mark.parametrize(
    ("data", "phrases"),
    [
        (b"file,label\na.png,cat\n", ["'x.zip'", "not a zip archive or a tar archive"]),
        (shape(), ["not a zip archive", "damaged or incomplete"]),
        (zip_bytes(GOOD)[:300], ["damaged or incomplete"]),
        (bz2.compress(tar_bytes(GOOD)), ["bzip2 or xz", ".tar.gz or .zip"]),
        (gzip.compress(b"just some text, no tar in here" * 30), ["not a zip archive"]),
        (tar_bytes(GOOD, gz=True)[:-200], ["damaged or incomplete tar archive"]),
        (tar_bytes(GOOD)[:2000], ["damaged or incomplete tar archive"]),
        (zip_bytes([]), ["empty archive"]),
        (tar_bytes([]), ["empty archive"]),
        (tar_bytes([], gz=True), ["empty archive"]),
    ],
    ids=[
        "csv",
        "png",
        "cut zip",
        "bzip2",
        "gzip of text",
        "cut tar.gz",
        "cut tar",
        "empty zip",
        "empty tar",
        "empty tar.gz",
    ],
)
def test_it_refuses_what_is_no_usable_archive_naming_the_file(data, phrases):
    with pytest.raises(InvalidInput) as caught:
        inspect_archive(io.BytesIO(data), max_entries=100, source_name="x.zip")
    for phrase in phrases:
        assert phrase in caught.value.message
    assert "'x.zip'" in caught.value.message
    assert caught.value.field == "file"


def _first_local_header(data: bytearray) -> int:
    return data.find(b"PK\x03\x04")


def _corrupt_first_entry(data: bytearray) -> None:
    at = _first_local_header(data)
    name_size = int.from_bytes(data[at + 26 : at + 28], "little")
    data[at + 30 + name_size + 40] ^= 0xFF  # a byte of its packed data


def _rename_first_entry_locally(data: bytearray) -> None:
    at = _first_local_header(data)
    data[at + 30] = ord("X")  # the table of contents still names it circle/...


def _encrypt_flag_first_entry(data: bytearray) -> None:
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + flag_at] |= 0x01


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
@pytest.mark.parametrize(
    "tamper", [None, _corrupt_first_entry, _rename_first_entry_locally, _encrypt_flag_first_entry]
)
def test_a_mapped_zip_reads_the_bytes_and_reasons_zipfile_reads(compression, tamper):
    """Plain entries come straight from the map; anything else is left to zipfile, which
    says what is wrong: the same result either way."""
    data = bytearray(zip_bytes(GOOD, compression=compression))
    if tamper is not None:
        tamper(data)
    results = []
    for mapped in (True, False):
        archive = reader(bytes(data), mapped=mapped)
        results.append(list(archive.read(archive.scan())))
    assert results[0] == results[1]
    if tamper is None:
        assert [d for _e, d in results[0]] == [d for _n, d in GOOD]
    else:
        assert isinstance(results[0][0], Skipped)
        assert all(not isinstance(r, Skipped) for r in results[0][1:])
