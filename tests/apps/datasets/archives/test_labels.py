"""Labels: class folders at any depth, or a manifest CSV (apps.datasets.archives.labels)."""

from __future__ import annotations

import io

import pytest

from apps.core.errors import InvalidInput
from apps.datasets.archives import inspect_archive
from tests.apps.datasets.archives.readers import (
    ARCHIVES,
    GOOD,
    labels,
    reasons,
    scan,
)
from tests.support.archives import (
    shape,
    tar_bytes,
    zip_bytes,
)

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
