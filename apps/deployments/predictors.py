"""Loaded predictors, kept per process so a call does not reload weights from storage."""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from workers.ml.predictor import Predictor, load_predictor
from workers.ml.tabular import TabularPredictor

AnyPredictor = Predictor | TabularPredictor

_lock = threading.Lock()
_cache: OrderedDict[str, AnyPredictor] = OrderedDict()


def predictor_for(*, file_name: str) -> AnyPredictor:
    """The predictor for a stored model file, image classifier or regressor alike (an LRU of
    LEPTON_PREDICTOR_CACHE_SIZE entries).

    Raises:
        FileNotFoundError: if the file is not in storage.
        ValueError: if the file is not a usable model bundle.
    """
    with _lock:
        predictor = _cache.get(file_name)
        if predictor is not None:
            _cache.move_to_end(file_name)
            return predictor
    try:
        path = Path(default_storage.path(file_name))
        predictor = load_predictor(path, device="cpu")
    except NotImplementedError:  # remote storage: load from a local copy
        with default_storage.open(file_name, "rb") as src, tempfile.NamedTemporaryFile() as tmp:
            tmp.write(src.read())
            tmp.flush()
            predictor = load_predictor(Path(tmp.name), device="cpu")
    with _lock:
        _cache[file_name] = predictor
        while len(_cache) > settings.LEPTON_PREDICTOR_CACHE_SIZE:
            _cache.popitem(last=False)
    return predictor
