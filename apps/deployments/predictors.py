"""Loaded predictors, kept per process so a call does not reload weights from storage."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from workers.ml.predictor import Predictor

_lock = threading.Lock()
_cache: OrderedDict[str, Predictor] = OrderedDict()


def predictor_for(*, file_name: str) -> Predictor:
    """The predictor for a stored model file (LRU of LEPTON_PREDICTOR_CACHE_SIZE entries)."""
    with _lock:
        predictor = _cache.get(file_name)
        if predictor is not None:
            _cache.move_to_end(file_name)
            return predictor
    try:
        path = Path(default_storage.path(file_name))
        predictor = Predictor.load(path, device="cpu")
    except NotImplementedError:
        import tempfile

        with default_storage.open(file_name, "rb") as src, tempfile.NamedTemporaryFile() as tmp:
            tmp.write(src.read())
            tmp.flush()
            predictor = Predictor.load(Path(tmp.name), device="cpu")
    with _lock:
        _cache[file_name] = predictor
        while len(_cache) > settings.LEPTON_PREDICTOR_CACHE_SIZE:
            _cache.popitem(last=False)
    return predictor
