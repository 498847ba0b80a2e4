"""Limits counted on bytes actually read: entries, sizes, compression bombs, tar headers
(apps.datasets.archives.limits)."""

from __future__ import annotations

import pytest

from apps.core.errors import PayloadTooLarge
from apps.datasets.archives import Entry, Skipped
from tests.apps.datasets.archives.readers import (
    ARCHIVES,
    GOOD,
    read_all,
    reader,
    scan,
)
from tests.support.archives import (
    TarEntry,
    noise_png,
    shape,
    tar_bytes,
    zip_bytes,
)

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
