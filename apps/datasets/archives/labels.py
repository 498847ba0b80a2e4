"""Which images an archive holds and their labels: by class folder, or by a manifest CSV
(file, label and optionally split columns) at the archive's root.

resolve() turns the classified entries of one pass over the archive into a Scan; every image
left out is listed with the reason, and a manifest's unusable rows with their row numbers.
"""

from __future__ import annotations

import csv
import io
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from apps.core.errors import InvalidInput
from apps.core.text import human_size
from apps.datasets.archives.limits import MANIFEST_MAX_BYTES
from apps.datasets.archives.names import DRIVE_LETTER, Member, Skipped, clean_name, path_parts

SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "validate": "validation",
    "test": "test",
    "testing": "test",
}
_COLUMNS = {
    "file": "file",
    "filename": "file",
    "path": "file",
    "image": "file",
    "label": "label",
    "class": "label",
    "split": "split",
}


@dataclass(frozen=True)
class Entry:
    """An image to ingest: where it is in the archive, its label, and its manifest split."""

    name: str  # the path in the archive, as people read it (decoded, NFC)
    label: str
    split: str | None
    key: int  # zip: index in the central directory; tar: the member's header offset


@dataclass
class Scan:
    kind: str  # "zip" | "tar"
    entries: list[Entry]
    skipped: list[Skipped]
    manifest: str | None = None  # the manifest's path, when one was used
    manifest_has_split: bool = False


@dataclass
class _Manifest:
    path: str
    rows: dict[str, tuple[str, str | None, int]] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)  # file -> row of a rejected row
    problems: list[Skipped] = field(default_factory=list)
    has_split: bool = False

    def problem(self, row: int, reason: str) -> None:
        self.problems.append(Skipped(f"{self.path} row {row}", f"row {row}: {reason}"))


def _root_of(paths: list[list[str]]) -> str:
    """The folder everything sits in ("" or "name/"): zipping a folder often adds one."""
    tops = {parts[0] for parts in paths}
    if len(tops) == 1 and all(len(parts) > 1 for parts in paths):
        return tops.pop() + "/"
    return ""


def _choose_manifest(csvs: list[str], root: str) -> tuple[str | None, list[Skipped]]:
    """The manifest among the archive's CSV files: the one at its root (or manifest.csv)."""
    at_root = sorted(p for p in csvs if posixpath.dirname(p) + "/" == root or "/" not in p)
    chosen = at_root[0] if len(at_root) == 1 else None
    if len(at_root) > 1:
        named = [p for p in at_root if posixpath.basename(p).lower() == "manifest.csv"]
        chosen = named[0] if len(named) == 1 else None
    skipped = []
    for path in csvs:
        if path == chosen:
            continue
        if path in at_root and chosen is None:
            reason = "several CSV files at the archive root: name the manifest manifest.csv"
        else:
            reason = "CSV file that is not the manifest: ignored"
        skipped.append(Skipped(path, reason))
    return chosen, skipped


@dataclass
class _Files:
    """An archive's files as one pass classified them."""

    images: dict[str, tuple[Member, list[str]]] = field(default_factory=dict)
    csvs: dict[str, list[str]] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)  # every file path, usable or not
    skipped: list[Skipped] = field(default_factory=list)


def _sort_files(members: list[tuple[Member, tuple[str, list[str]] | Skipped | None]]) -> _Files:
    files = _Files()
    for member, classified in members:
        if classified is None:
            continue
        files.present.add("/".join(path_parts(member.name)))
        if isinstance(classified, Skipped):
            files.skipped.append(classified)
            continue
        what, parts = classified
        path = "/".join(parts)
        if path in files.images or path in files.csvs:
            reason = "the archive holds this path twice: the first copy was used"
            files.skipped.append(Skipped(member.name, reason))
        elif what == "image":
            files.images[path] = (member, parts)
        else:
            files.csvs[path] = parts
    return files


def resolve(
    members: list[tuple[Member, tuple[str, list[str]] | Skipped | None]],
    csv_bytes: dict[str, bytes | Skipped],
    *,
    kind: str,
    source_name: str,
) -> Scan:
    """Turn the classified members into labelled images (by manifest or by folder)."""
    files = _sort_files(members)
    skipped = files.skipped
    root = _root_of([parts for _member, parts in files.images.values()] + list(files.csvs.values()))
    chosen, ignored = _choose_manifest(list(files.csvs), root)
    skipped.extend(ignored)
    manifest: _Manifest | None = None
    if chosen is not None:
        manifest = _parse_manifest(
            _manifest_bytes(csv_bytes, chosen),
            path=chosen,
            images=set(files.images),
            present=files.present,
            root=root,
            source_name=source_name,
        )
        skipped.extend(manifest.problems)
        entries = _listed_entries(files, manifest, skipped)
    else:
        entries = _folder_entries(files, skipped)
    entries.sort(key=lambda e: e.key)  # archive order, whatever the manifest's order
    if not entries:
        raise _no_images(manifest, source_name)
    return Scan(
        kind=kind,
        entries=entries,
        skipped=skipped,
        manifest=manifest.path if manifest else None,
        manifest_has_split=bool(manifest and manifest.has_split),
    )


def _listed_entries(files: _Files, manifest: _Manifest, skipped: list[Skipped]) -> list[Entry]:
    """The images the manifest labels; the others are skipped, saying why."""
    entries = []
    listed_in = posixpath.basename(manifest.path)
    for path, (member, _unused) in files.images.items():
        row = manifest.rows.get(path)
        if row is not None:
            entries.append(Entry(member.name, row[0], row[1], member.key))
        elif path in manifest.rejected:
            reason = f"its row in {listed_in} (row {manifest.rejected[path]}) is unusable"
            skipped.append(Skipped(member.name, reason))
        else:
            reason = f"not listed in {listed_in}: add a row for it to use it"
            skipped.append(Skipped(member.name, reason))
    return entries


def _folder_entries(files: _Files, skipped: list[Skipped]) -> list[Entry]:
    """The images labelled by the folder they are in; those in no folder are skipped."""
    entries = []
    for member, parts in files.images.values():
        label = parts[-2].strip()[:200] if len(parts) > 1 else ""
        if label:
            entries.append(Entry(member.name, label, None, member.key))
        else:
            reason = "not inside a class folder: put it in a folder named after its class"
            skipped.append(Skipped(member.name, reason))
    return entries


def _no_images(manifest: _Manifest | None, source_name: str) -> InvalidInput:
    if manifest is not None:
        first = "; ".join(p.reason for p in manifest.problems[:3])
        return InvalidInput(
            f"The manifest {manifest.path} in '{source_name}' has no usable row"
            + (f" ({first})" if first else "")
            + ". Each row needs a file (its path in the archive) and a label.",
            field="file",
        )
    return InvalidInput(
        f"'{source_name}' contains no images in class folders. Put each class's images in "
        "a folder named after the class, e.g. cat/a.jpg, dog/b.png, or add a manifest.csv "
        "with the columns file,label.",
        field="file",
    )


def _manifest_bytes(csv_bytes: dict[str, bytes | Skipped], path: str) -> bytes:
    data = csv_bytes.get(path, b"")
    if isinstance(data, Skipped):
        raise InvalidInput(
            f"The manifest {path} cannot be read: {data.reason}. Keep it under "
            f"{human_size(MANIFEST_MAX_BYTES)}.",
            field="file",
        )
    return data


def _sniff_delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _manifest_path(value: str) -> str | None:
    value = clean_name(value.strip().replace("\\", "/"))
    if not value or value.startswith("/") or DRIVE_LETTER.match(value) or ".." in path_parts(value):
        return None
    if any(ord(c) < 32 for c in value):
        return None
    return "/".join(path_parts(value))


def _parse_manifest(
    data: bytes,
    *,
    path: str,
    images: set[str],
    present: set[str],
    root: str,
    source_name: str,
) -> _Manifest:
    """Read a manifest: a header naming file and label (and split), then a row per image.

    Rows are numbered as a spreadsheet shows them (the header is row 1). A row that cannot be
    used is listed with its number and why; a manifest without a usable header fails whole.
    """
    manifest = _Manifest(path=path)

    def refuse(reason: str) -> InvalidInput:
        return InvalidInput(f"The manifest {path} in '{source_name}' {reason}", field="file")

    numbered = _numbered_rows(data, refuse)
    header_row, header = numbered[0]
    columns = _header_columns(manifest, header_row, header)
    if "file" not in columns or "label" not in columns:
        raise refuse(
            f"has no header row naming the columns file and label (row {header_row} reads "
            f"{', '.join(header)[:200]!r}). Make its first row file,label or file,label,split."
        )
    manifest.has_split = "split" in columns
    rows = _Rows(manifest, header, columns, images=images, present=present, root=root)
    for number, row in numbered[1:]:
        rows.read(number, row)
    return manifest


def _numbered_rows(data: bytes, refuse: Callable[[str], InvalidInput]) -> list[tuple[int, list]]:
    """The manifest's non-blank rows with their spreadsheet numbers; refuses what is no CSV."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise refuse(
            f"is not UTF-8 text (byte {exc.start}). Save it as 'CSV UTF-8' and upload the "
            "archive again."
        )
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text)))
    except csv.Error as exc:
        raise refuse(f"is not a readable CSV file ({exc}). Save it again as CSV.")
    numbered = [(n, row) for n, row in enumerate(rows, start=1) if any(c.strip() for c in row)]
    if not numbered:
        raise refuse("is empty. Give it a header row file,label(,split) and a row per image.")
    return numbered


def _header_columns(manifest: _Manifest, header_row: int, header: list[str]) -> dict[str, int]:
    """Where each known column is; unknown and repeated ones are listed as problems."""
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = _COLUMNS.get(cell.strip().lower())
        if key is None:
            manifest.problem(
                header_row, f"unknown column '{cell.strip()}' ignored; use file, label, split"
            )
        elif key in columns:
            manifest.problem(
                header_row, f"column '{cell.strip()}' appears twice; the first one is used"
            )
        else:
            columns[key] = index
    return columns


@dataclass
class _Rows:
    """The data rows of one manifest, read one at a time into it."""

    manifest: _Manifest
    header: list[str]
    columns: dict[str, int]
    images: set[str]
    present: set[str]
    root: str
    seen: dict[str, int] = field(default_factory=dict)  # path -> the row that listed it

    def read(self, number: int, row: list[str]) -> None:
        manifest = self.manifest
        cells = list(row)
        while len(cells) > len(self.header) and not cells[-1].strip():
            cells.pop()  # spreadsheets like to end rows with empty cells
        if len(cells) != len(self.header):
            manifest.problem(number, f"has {len(cells)} fields; the header has {len(self.header)}")
            return
        found = self._image(number, cells[self.columns["file"]].strip())
        if found is None:
            return
        file, resolved = found
        label = clean_name(cells[self.columns["label"]].strip())
        if not label:
            manifest.problem(number, f"no label for '{file}'")
            manifest.rejected[resolved] = number
            return
        split = None
        if manifest.has_split:
            value = cells[self.columns["split"]].strip()
            split = SPLIT_NAMES.get(value.lower())
            if split is None:
                manifest.problem(number, f"split '{value}' is not train, validation or test")
                manifest.rejected[resolved] = number
                return
        manifest.rows[resolved] = (label[:200], split, number)

    def _image(self, number: int, raw_file: str) -> tuple[str, str] | None:
        """The path a row names and the archive path of that image, or None (the problem
        listed)."""
        manifest = self.manifest
        file = _manifest_path(raw_file)
        if file is None:
            manifest.problem(
                number, f"'{raw_file}' is not a usable path (no '..', absolute or empty)"
            )
            return None
        resolved = self.root + file if self.root + file in self.present else file
        if resolved in self.seen:
            manifest.problem(number, f"'{file}' is already listed on row {self.seen[resolved]}")
            return None
        self.seen[resolved] = number
        if resolved not in self.present:
            manifest.problem(number, f"'{file}' is missing from the archive")
            return None
        if resolved not in self.images:
            manifest.problem(number, f"'{file}' is not a usable image (see its own entry)")
            return None
        return file, resolved
