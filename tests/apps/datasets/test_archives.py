"""Reading archives: zip and tar by content, names, junk, links, manifests, counted limits.

Plain tests of apps.datasets.archives over bytes in memory: no database.
"""

from __future__ import annotations

import bz2
import gzip
import io
import mmap
import tarfile
import zipfile
import zlib

import pytest

from apps.core.errors import InvalidInput, PayloadTooLarge
from apps.datasets.archives import (
    ArchiveReader,
    Entry,
    Limits,
    MappedFile,
    Skipped,
    inspect_archive,
)
from tests.support.archives import (
    TarEntry,
    class_images,
    clear_utf8_flag,
    noise_png,
    shape,
    symlink_info,
    tar_bytes,
    zip_bytes,
)

LIMITS = Limits(max_entries=1000, max_total_bytes=64 << 20, max_entry_bytes=8 << 20, max_ratio=100)
GOOD = class_images(2)


def reader(
    data: bytes, name: str = "upload.bin", *, mapped: bool = True, **limits
) -> ArchiveReader:
    """A reader of `data` as the ingestion has it: memory-mapped (or, unmapped, as an upload)."""
    chosen = Limits(**(LIMITS.__dict__ | limits))
    fileobj = mapped_file(data) if mapped and data else io.BytesIO(data)
    return ArchiveReader(fileobj, limits=chosen, source_name=name)


def mapped_file(data: bytes) -> MappedFile:
    area = mmap.mmap(-1, len(data))
    area.write(data)
    area.seek(0)
    return MappedFile(area)


def scan(data: bytes, **limits):
    return reader(data, **limits).scan()


def labels(data: bytes) -> dict[str, str]:
    return {e.name: e.label for e in scan(data).entries}


def reasons(data: bytes) -> dict[str, str]:
    return {s.path: s.reason for s in scan(data).skipped}


def read_all(data: bytes, **limits) -> list:
    archive = reader(data, **limits)
    return list(archive.read(archive.scan()))


ARCHIVES = {
    "zip": lambda entries: zip_bytes(entries),
    "stored zip": lambda entries: zip_bytes(entries, compression=zipfile.ZIP_STORED),
    "tar": lambda entries: tar_bytes(entries),
    "tar.gz": lambda entries: tar_bytes(entries, gz=True),
    "gnu tar": lambda entries: tar_bytes(entries, fmt=tarfile.GNU_FORMAT),
    "ustar": lambda entries: tar_bytes(entries, fmt=tarfile.USTAR_FORMAT),
}


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


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_class_folders_may_sit_at_any_depth(kind):
    data = ARCHIVES[kind](
        [
            ("photos/2024/cat/a.png", shape("circle", 1)),
            ("photos/2024/dog/b.png", shape("square", 2)),
            ("./bird/c.png", shape("triangle", 3)),
            ("loose.png", shape("triangle", 4)),
        ]
    )
    assert labels(data) == {
        "photos/2024/cat/a.png": "cat",
        "photos/2024/dog/b.png": "dog",
        "./bird/c.png": "bird",
    }
    assert "not inside a class folder" in reasons(data)["loose.png"]


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


# --- manifests -----------------------------------------------------------------------------------


def manifest(
    text: str, *, bom: bool = False, extra: list | None = None, name: str = "manifest.csv"
):
    images = [
        ("img/a.png", shape("circle", 1)),
        ("img/b.png", shape("square", 2)),
        ("img/c.png", shape("triangle", 3)),
        ("img/d.png", shape("circle", 4)),
    ]
    body = ("\ufeff" if bom else "") + text
    return images + (extra or []) + [(name, body.encode())]


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
@pytest.mark.parametrize(
    ("text", "bom"),
    [
        ("file,label\nimg/a.png,cat\nimg/b.png,dog\n", False),
        ("FILE;Label\nimg/a.png;cat\nimg/b.png;dog\n", True),
        ("File\tLABEL\r\nimg/a.png\tcat\r\nimg/b.png\tdog\r\n", False),
        ('"file","label"\n"img/a.png","cat"\n"./img\\b.png","dog"\n', True),
    ],
    ids=["comma", "semicolon with BOM", "tab with CRLF", "quoted, backslash"],
)
def test_a_manifest_labels_the_images(kind, text, bom):
    result = scan(ARCHIVES[kind](manifest(text, bom=bom)))
    assert {e.name: (e.label, e.split) for e in result.entries} == {
        "img/a.png": ("cat", None),
        "img/b.png": ("dog", None),
    }
    assert result.manifest == "manifest.csv"
    assert not result.manifest_has_split
    assert {s.path: s.reason for s in result.skipped} == {
        "img/c.png": "not listed in manifest.csv: add a row for it to use it",
        "img/d.png": "not listed in manifest.csv: add a row for it to use it",
    }


def test_a_manifest_split_column_sets_the_splits():
    text = "file,label,split\nimg/a.png,cat,train\nimg/b.png,dog,Val\nimg/c.png,cat,valid\n"
    text += "img/d.png,dog,TEST\n"
    result = scan(zip_bytes(manifest(text)))
    assert result.manifest_has_split
    assert {e.name: e.split for e in result.entries} == {
        "img/a.png": "train",
        "img/b.png": "validation",
        "img/c.png": "validation",
        "img/d.png": "test",
    }


def test_manifest_errors_are_listed_per_row():
    text = (
        "file,label,split,notes\n"  # row 1: an unknown column
        "img/a.png,cat,train,ok\n"  # row 2: fine
        "img/missing.png,cat,train,x\n"  # row 3: no such file
        "img/b.png,dog,holdout,x\n"  # row 4: bad split
        "img/a.png,cat,test,again\n"  # row 5: listed twice
        "img/c.png,,train,x\n"  # row 6: no label
        "img/d.png,dog\n"  # row 7: ragged
        "../../etc/passwd,cat,train,x\n"  # row 8: unsafe
        "\n"  # row 9: blank, ignored
        "notes.txt,cat,train,x\n"  # row 10: not an image
    )
    result = scan(zip_bytes(manifest(text, extra=[("notes.txt", b"hello")])))
    found = {s.path: s.reason for s in result.skipped}
    rows = {path: reason for path, reason in found.items() if " row " in path}
    assert sorted(rows) == [f"manifest.csv row {n}" for n in (1, 10, 3, 4, 5, 6, 7, 8)]
    assert "unknown column 'notes'" in rows["manifest.csv row 1"]
    assert "'img/missing.png' is missing from the archive" in rows["manifest.csv row 3"]
    assert "split 'holdout' is not train, validation or test" in rows["manifest.csv row 4"]
    assert "already listed on row 2" in rows["manifest.csv row 5"]
    assert "no label" in rows["manifest.csv row 6"]
    assert "has 2 fields; the header has 4" in rows["manifest.csv row 7"]
    assert "not a usable path" in rows["manifest.csv row 8"]
    assert "not a usable image" in rows["manifest.csv row 10"]
    for row, reason in rows.items():
        assert reason.startswith(f"row {row.rsplit(' ', 1)[1]}: ")
    # The images of rejected rows say why; the one good row is the only image used.
    assert "row 4" in found["img/b.png"] and "row 6" in found["img/c.png"]
    assert [e.name for e in result.entries] == ["img/a.png"]


@pytest.mark.parametrize(
    ("text", "phrases"),
    [
        ("img/a.png,cat\nimg/b.png,dog\n", ["no header row naming the columns", "row 1"]),
        ("path,class\n", ["no usable row"]),
        ("file,label\nnope.png,cat\n", ["no usable row", "row 2", "missing from the archive"]),
        ("", ["is empty"]),
    ],
    ids=["no header", "header only", "no usable row", "empty"],
)
def test_a_manifest_with_no_usable_row_fails_clearly(text, phrases):
    with pytest.raises(InvalidInput) as caught:
        inspect_archive(io.BytesIO(zip_bytes(manifest(text))), max_entries=100, source_name="m.zip")
    assert "manifest.csv" in caught.value.message
    assert "'m.zip'" in caught.value.message
    for phrase in phrases:
        assert phrase in caught.value.message


def test_a_manifest_that_is_no_utf8_text_fails_clearly():
    cp1252 = "file,label\nimg/a.png,café\n".encode("cp1252")
    data = zip_bytes(manifest("x")[:-1] + [("manifest.csv", cp1252)])
    with pytest.raises(InvalidInput, match="not UTF-8 text.*CSV UTF-8"):
        scan(data)


def test_a_manifest_in_the_folder_that_wraps_everything_counts():
    entries = [
        (f"export/{name}", data)
        for name, data in manifest("file,label\nimg/a.png,cat\nimg/b.png,dog\n")
    ]
    result = scan(tar_bytes(entries))
    assert result.manifest == "export/manifest.csv"
    assert {e.name: e.label for e in result.entries} == {
        "export/img/a.png": "cat",
        "export/img/b.png": "dog",
    }


def test_several_root_csvs_prefer_manifest_csv():
    entries = manifest("file,label\nimg/a.png,cat\n") + [("other.csv", b"a,b\n1,2\n")]
    result = scan(zip_bytes(entries))
    assert result.manifest == "manifest.csv"
    assert {s.path: s.reason for s in result.skipped}["other.csv"].startswith(
        "CSV file that is not"
    )


def test_without_a_manifest_other_csvs_are_skipped_and_folders_label():
    entries = GOOD + [("a.csv", b"x"), ("b.csv", b"y")]
    result = scan(zip_bytes(entries))
    assert result.manifest is None
    assert len(result.entries) == len(GOOD)
    assert {s.path for s in result.skipped} == {"a.csv", "b.csv"}


# --- limits, counted on bytes actually read -------------------------------------------------------


def test_too_many_entries_is_refused_for_zip_and_tar():
    for data in (zip_bytes(GOOD), tar_bytes(GOOD, gz=True)):
        with pytest.raises(PayloadTooLarge, match="the limit is 5"):
            scan(data, max_entries=5)


def test_an_entry_over_the_image_limit_is_skipped_by_the_bytes_it_unpacks():
    big = noise_png(300)
    for data in (
        zip_bytes(GOOD + [("circle/big.png", big)]),
        tar_bytes(GOOD + [("circle/big.png", big)], gz=True),
    ):
        read = read_all(data, max_entry_bytes=100_000)
        skipped = [r for r in read if isinstance(r, Skipped)]
        assert skipped == [Skipped("circle/big.png", "larger than 97.7 KB once unpacked")]
        assert sum(isinstance(r, tuple) and isinstance(r[0], Entry) for r in read) == len(GOOD)


def test_a_zip_entry_whose_header_understates_its_size_is_not_unpacked_beyond_it():
    data = bytearray(zip_bytes(GOOD + [("circle/bomb.png", b"\0" * (6 << 20))]))
    # Claim 100 bytes unpacked for the bomb (the last entry) in the central directory.
    at = data.rfind(b"PK\x01\x02")
    data[at + 24 : at + 28] = (100).to_bytes(4, "little")
    archive = reader(bytes(data))
    read = list(archive.read(archive.scan()))
    skipped = [r for r in read if isinstance(r, Skipped)]
    assert [s.path for s in skipped] == ["circle/bomb.png"]
    assert "damaged entry" in skipped[0].reason


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


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_a_compression_bomb_is_refused_by_its_ratio(kind):
    bomb = [(f"circle/bomb{i}.png", b"\0" * (1 << 20)) for i in range(12)]
    data = ARCHIVES[kind](GOOD + bomb)
    assert len(data) < 100_000
    with pytest.raises(PayloadTooLarge, match="times its own size"):
        read_all(data, max_ratio=50)


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_an_archive_over_the_total_is_refused_while_reading(kind):
    data = ARCHIVES[kind](GOOD + [(f"circle/n{i}.png", noise_png(200, i)) for i in range(4)])
    with pytest.raises(PayloadTooLarge, match="unpacks to more than 300 KB"):
        read_all(data, max_total_bytes=300 * 1024)


def test_tar_bombs_hidden_in_skipped_entries_count_too():
    # Unused entries of a tar must still be unpacked to reach the next one: they count.
    data = tar_bytes(GOOD + [("junk/filler.txt", b"\0" * (8 << 20))], gz=True)
    with pytest.raises(PayloadTooLarge, match="times its own size"):
        scan(data, max_ratio=50)


def test_a_giant_tar_header_is_refused_before_it_is_held_in_memory():
    huge = TarEntry("circle/x.png", shape(), pax={"comment": "A" * (3 << 20)})
    with pytest.raises(PayloadTooLarge, match="tar header larger than 1 MB"):
        scan(tar_bytes(GOOD + [huge], gz=True), max_ratio=10_000)


def test_a_tar_member_larger_than_the_whole_budget_is_refused_before_it_is_read():
    data = tar_bytes(GOOD + [("circle/big.png", noise_png(300))])
    with pytest.raises(PayloadTooLarge, match="unpacks to more than"):
        scan(data, max_total_bytes=100_000)
