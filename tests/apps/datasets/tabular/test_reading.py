"""Reading CSVs without a database: streaming, sniffing, row numbers."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.errors import InvalidInput
from apps.datasets.tabular.services import inspect_csv


def upload(data: bytes, name: str = "t.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def refusal(data: bytes) -> str:
    with pytest.raises(InvalidInput) as caught:
        inspect_csv(upload(data))
    return caught.value.message


class RecordingFile(io.BytesIO):
    """A file that remembers the largest piece it was asked for."""

    largest = 0

    def read(self, size: int | None = -1) -> bytes:
        return self._note(super().read(size))

    def readline(self, size: int | None = -1) -> bytes:
        return self._note(super().readline(size))

    def _note(self, data: bytes) -> bytes:
        self.largest = max(self.largest, len(data))
        return data


def test_it_streams_the_file_a_line_at_a_time():
    rows = b"".join(b"m%d,r%d,%d.5,%d\n" % (i, i % 4, i % 100, i % 7) for i in range(20_000))
    data = b"market,region,size,demand\n" + rows
    handle = upload(data)
    handle.file = RecordingFile(data)
    assert inspect_csv(handle) == "csv"
    assert len(data) > 300_000
    assert handle.file.largest <= 8192  # the first bytes, checked for a binary signature


def test_it_counts_rows_like_a_spreadsheet_across_quoted_line_breaks():
    data = (
        b'market,note,demand\n"Egypt","two\nlines",1\n\n,,\n"Chile","ok",abc\n' + b"Peru,x,2\n" * 9
    )
    # header 1, Egypt 2 (one row holding a line break), blank 3 and 4, Chile 5
    assert "in row 5 ('abc')" in refusal(data)


def test_it_reads_decimal_commas_only_beside_semicolons_and_tabs():
    semicolon = "market;price\n" + "".join(f"m{i};{i},5\n" for i in range(11)) + "m;x\n"
    assert "Numeric column 'price'" in refusal(semicolon.encode())  # 11 numbers and one word
    comma = "market,price\n" + "".join(f'm{i},"{i},5"\n' for i in range(11)) + "m,x\n"
    assert inspect_csv(upload(comma.encode())) == "csv"  # "1,5" beside commas is text


def test_it_forgives_trailing_empty_cells_but_not_missing_ones():
    assert inspect_csv(upload(b"a,b\nx,1,,\ny,2,\n")) == "csv"
    assert "Row 3 has 1 cells" in refusal(b"a,b\nx,1\ny\n")
