"""Entry names and kinds: junk, unsafe paths, links, devices, names in any script
(apps.datasets.archives.names)."""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib

import pytest

from tests.apps.datasets.archives.readers import (
    ARCHIVES,
    GOOD,
    labels,
    read_all,
    reasons,
    scan,
)
from tests.support.archives import (
    TarEntry,
    clear_utf8_flag,
    shape,
    symlink_info,
    tar_bytes,
    zip_bytes,
)

# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_junk_is_ignored_and_listed(kind):
    junk = {
        "__MACOSX/circle/._circle_0.png": "__MACOSX",
        "deep/__MACOSX/x.png": "__MACOSX",
        "circle/.DS_Store": "hidden or system file",
        "Thumbs.db": "hidden or system file",
        "square/Desktop.ini": "hidden or system file",
        "square/.hidden.png": "hidden or system file",
        ".git/config.png": "hidden or system file",
        "triangle/notes.txt": "not an image file (extension '.txt'",
        "triangle/README": "not an image file (no extension",
    }
    found = reasons(ARCHIVES[kind](GOOD + [(name, b"junk") for name in junk]))
    assert sorted(found) == sorted(junk)
    for name, phrase in junk.items():
        assert phrase in found[name], name


@pytest.mark.parametrize("kind", ["zip", "tar"])
@pytest.mark.parametrize(
    "name",
    ["../x.png", "a/../../x.png", "/etc/x.png", "C:/x.png", "c:x.png", "..\\x.png", "a\nb.png"],
)
def test_unsafe_names_are_skipped_in_both_formats(kind, name):
    found = reasons(ARCHIVES[kind](GOOD + [(name, shape())]))
    assert found == {name: found[name]}
    assert found[name].startswith("unsafe path")


@pytest.mark.parametrize(
    ("entry", "phrase"),
    [
        (TarEntry("circle/link.png", type=tarfile.SYMTYPE, linkname="/etc/passwd"), "symbolic"),
        (TarEntry("circle/up.png", type=tarfile.SYMTYPE, linkname="../../../x"), "symbolic"),
        (TarEntry("circle/hard.png", type=tarfile.LNKTYPE, linkname="/etc/shadow"), "hard link"),
        (TarEntry("circle/tty.png", type=tarfile.CHRTYPE), "device file"),
        (TarEntry("circle/disk.png", type=tarfile.BLKTYPE), "device file"),
        (TarEntry("circle/pipe.png", type=tarfile.FIFOTYPE), "named pipe"),
    ],
    ids=["symlink", "symlink up", "hard link", "char device", "block device", "fifo"],
)
def test_tar_links_and_devices_are_skipped(entry, phrase):
    found = reasons(tar_bytes(GOOD + [entry], gz=True))
    assert phrase in found[entry.name]
    assert len(scan(tar_bytes(GOOD + [entry])).entries) == len(GOOD)


def test_zip_symlinks_are_skipped():
    found = reasons(zip_bytes(GOOD + [(symlink_info("circle/link.png"), b"/etc/passwd")]))
    assert found == {"circle/link.png": "symbolic link: skipped"}


def test_a_path_held_twice_is_used_once():
    data = tar_bytes(GOOD + [("circle/circle_0.png", shape(seed=99))])
    assert reasons(data) == {
        "circle/circle_0.png": "the archive holds this path twice: the first copy was used"
    }
    first = dict(read_all(data)[0:1])
    assert list(first.values()) == [GOOD[0][1]]


NAMES = ["猫/照片 1.png", "قطة/صورة.png", "café/crème brûlée.png", "Ελληνικά/α.png"]


def test_zip_names_in_any_script_are_kept_with_or_without_the_utf8_flag():
    entries = [(name, shape(seed=i)) for i, name in enumerate(NAMES)]
    flagged = zip_bytes(entries)
    unflagged = clear_utf8_flag(flagged)
    assert all(i.flag_bits & 0x800 == 0 for i in zipfile.ZipFile(io.BytesIO(unflagged)).infolist())
    for data in (flagged, unflagged):
        assert labels(data) == {name: name.split("/")[0] for name in NAMES}


def test_zip_names_from_old_tools_fall_back_to_cp437():
    data = clear_utf8_flag(zip_bytes([("caf?/a.png", shape()), ("dog/b.png", shape(seed=2))]))
    data = data.replace(b"caf?", "café".encode("cp437"))  # 0x82: no valid UTF-8
    assert set(labels(data).values()) == {"café", "dog"}


def test_zip_names_from_the_info_zip_unicode_field():
    ascii_name = "____/a.png"
    info = zipfile.ZipInfo(ascii_name)
    real = "猫猫/a.png".encode()
    field = b"\x01" + zlib.crc32(ascii_name.encode()).to_bytes(4, "little") + real
    info.extra = b"\x75\x70" + len(field).to_bytes(2, "little") + field
    data = zip_bytes([(info, shape()), ("dog/b.png", shape(seed=2))])
    assert labels(data) == {"猫猫/a.png": "猫猫", "dog/b.png": "dog"}


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_tar_names_in_any_script_are_kept(fmt):
    entries = [(name, shape(seed=i)) for i, name in enumerate(NAMES)]
    assert labels(tar_bytes(entries, fmt=fmt)) == {name: name.split("/")[0] for name in NAMES}


def test_decomposed_accents_from_macos_make_one_label():
    decomposed = "cafe\u0301/a.png"
    data = zip_bytes([(decomposed, shape()), ("café/b.png", shape(seed=1))])
    assert set(labels(data).values()) == {"café"}
