"""The one vocabulary of dataset values, shared by upload profiling, ingestion, row prediction and
the ML core: which table cells mean "missing", "true", "false" or a number, and how data sets are
split. Django-free, so the worker's ML code and the portal read cells exactly alike.
"""

from __future__ import annotations

#: the three splits of every data set, in order
SPLITS: tuple[str, str, str] = ("train", "validation", "test")
#: shares of each split unless a version says otherwise (stratified per class for images)
DEFAULT_SPLIT_RATIOS: dict[str, float] = {"train": 0.7, "validation": 0.15, "test": 0.15}
