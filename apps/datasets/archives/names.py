"""The names and kinds of an archive's entries: which are images, which a manifest, and why
the others are skipped (unsafe paths, links, devices, junk), in words a person can act on.

Names are decoded as their authors wrote them (UTF-8 with or without the flag that says so,
the Info-ZIP Unicode Path field, CP437 from old tools) and normalised (NFC), so one label
never becomes two.
"""

from __future__ import annotations

import posixpath
import re
import stat
import struct
import tarfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass

from workers.ml.images import IMAGE_EXTENSIONS

JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
DRIVE_LETTER = re.compile(r"^[a-zA-Z]:")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_UNSAFE = "unsafe path (absolute, drive letter, backslash, '..' or control character): skipped"


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class Member:
    name: str
    kind: str  # file | dir | symlink | hardlink | device | fifo | sparse | other
    key: int


def clean_name(name: str) -> str:
    # macOS writes names decomposed (e + combining accent); one label must not become two.
    return unicodedata.normalize("NFC", name)


def path_parts(name: str) -> list[str]:
    # "./cat/a.png" is the same entry as "cat/a.png"; "." is no hidden file.
    return [p for p in name.split("/") if p and p != "."]


def unsafe_name(name: str) -> bool:
    return (
        "\\" in name
        or bool(DRIVE_LETTER.match(name))
        or name.startswith("/")
        or ".." in path_parts(name)
        or bool(_CONTROL.search(name))
    )


def classify(member: Member) -> tuple[str, list[str]] | Skipped | None:
    """("image" | "csv", parts), a skip with its reason, or None for a folder."""
    name = member.name
    if member.kind == "dir":
        return None
    if unsafe_name(name):
        return Skipped(name, _UNSAFE)
    special = {
        "symlink": "symbolic link: skipped",
        "hardlink": "hard link: skipped",
        "device": "device file: skipped",
        "fifo": "named pipe (FIFO): skipped",
        "sparse": "sparse file: skipped",
        "other": "not a regular file: skipped",
    }
    if member.kind in special:
        return Skipped(name, special[member.kind])
    parts = path_parts(name)
    if not parts:
        return None
    if "__MACOSX" in parts:
        return Skipped(name, "macOS metadata folder (__MACOSX): ignored")
    if any(p.startswith(".") for p in parts) or parts[-1].lower() in JUNK_NAMES:
        return Skipped(name, "hidden or system file: ignored")
    extension = posixpath.splitext(parts[-1])[1].lower()
    if extension == ".csv":
        return "csv", parts
    if extension not in IMAGE_EXTENSIONS:
        allowed = ", ".join(sorted(IMAGE_EXTENSIONS))
        what = f"extension '{extension}'" if extension else "no extension"
        return Skipped(name, f"not an image file ({what}; use {allowed})")
    return "image", parts


def zip_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as its author wrote it.

    Zip has two ways to say a name is UTF-8 (the language flag, the Info-ZIP Unicode Path
    field); many tools write UTF-8 with neither, and zipfile then reads it as CP437 (mojibake
    for Chinese, Arabic, accents). A name that is valid UTF-8 is taken as UTF-8.
    """
    name = info.filename
    raw = name.encode("utf-8" if info.flag_bits & 0x800 else "cp437", errors="replace")
    unicode_path = _unicode_path_field(info.extra, raw)
    if unicode_path is not None:
        return unicode_path
    if not info.flag_bits & 0x800:
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return name


def _unicode_path_field(extra: bytes, raw_name: bytes) -> str | None:
    at = 0
    while at + 4 <= len(extra):
        tag, size = struct.unpack("<HH", extra[at : at + 4])
        data = extra[at + 4 : at + 4 + size]
        at += 4 + size
        if tag == 0x7075 and len(data) > 5 and data[0] == 1:
            (crc,) = struct.unpack("<I", data[1:5])
            if crc == zlib.crc32(raw_name):  # the field belongs to this very name
                try:
                    return data[5:].decode("utf-8")
                except UnicodeDecodeError:
                    return None
    return None


def tar_name(member: tarfile.TarInfo) -> str:
    name = member.name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 came through as surrogates
        name = name.encode("utf-8", "surrogateescape").decode("latin-1")
    return name


def tar_kind(member: tarfile.TarInfo) -> str:
    if member.issparse():
        return "sparse"
    if member.isreg():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "fifo"
    return "other"


def zip_kind(info: zipfile.ZipInfo) -> str:
    if info.is_dir():
        return "dir"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        return "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "other"
    return "file"
