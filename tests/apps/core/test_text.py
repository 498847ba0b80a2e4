import pytest

from apps.core.text import human_size


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
