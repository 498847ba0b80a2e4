import pytest

from apps.core.text import human_duration, human_ms, human_percent, human_size, parse_size


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (512, "512 bytes"),
        (1536, "1.5 KB"),
        (1024**2, "1 MB"),
        (5 * 1024**2 + 1024**2 // 2, "5.5 MB"),
        (3 * 1024**3, "3 GB"),
        (2048 * 1024**3, "2048 GB"),
    ],
)
def test_it_prints_sizes_people_can_read(n, text):
    assert human_size(n) == text


@pytest.mark.parametrize(
    ("fraction", "text"),
    [(0.9666, "96.7 %"), (1.0, "100.0 %"), (0.0, "0.0 %"), (0.12345, "12.3 %")],
)
def test_it_prints_fractions_as_percentages(fraction, text):
    assert human_percent(fraction) == text


@pytest.mark.parametrize(
    ("ms", "text"), [(4.25, "4.2 ms"), (0.04, "0.0 ms"), (99.94, "99.9 ms"), (153.4, "153 ms")]
)
def test_it_prints_latencies_in_milliseconds(ms, text):
    assert human_ms(ms) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (4.24, "4.2 s"),
        (42.4, "42 s"),
        (185, "3 min 5 s"),
        (2 * 3600 + 14 * 60 + 10, "2 h 14 min"),
        (47 * 3600, "47 h 0 min"),
        (3 * 86400 + 4 * 3600 + 59, "3 d 4 h"),
    ],
)
def test_it_prints_durations_in_readable_units(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("5 GB", 5 * 1024**3),
        ("5GiB", 5 * 1024**3),
        ("1.5 KB", 1536),
        (" 512 ", 512),
        ("512 bytes", 512),
        ("2 tb", 2 * 1024**4),
        ("5,368,709,120", 5 * 1024**3),
    ],
)
def test_it_reads_sizes_as_people_type_them(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "GB", "five GB", "-1 GB", "5 PB", "inf", "nan MB"])
def test_it_refuses_what_is_not_a_size(text):
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


def test_it_reads_back_what_it_writes_only_when_nothing_was_rounded():
    for n in (0, 1, 1536, 5 * 1024**3):
        assert parse_size(human_size(n)) == n
    assert parse_size(human_size(5 * 1024**3 + 1)) != 5 * 1024**3 + 1
