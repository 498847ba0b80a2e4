"""Predictor: ranking, probabilities, top_k handling, thread safety, and bad model files."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support.shapes import SHAPE_CLASSES, make_shape_image
from workers.ml.checkpoint import ModelBundle, load_bundle, save_bundle
from workers.ml.predictor import Prediction, Predictor


def _images(count: int = 6) -> list[Image.Image]:
    rng = np.random.default_rng(3)
    return [make_shape_image(SHAPE_CLASSES[i % 3], rng, 32) for i in range(count)]


@pytest.fixture(scope="module")
def predictor(random_bundle_path: Path) -> Predictor:
    return Predictor.load(random_bundle_path, device="cpu")


def test_load_exposes_bundle_metadata(predictor: Predictor) -> None:
    assert predictor.labels == list(SHAPE_CLASSES)
    assert predictor.input_size == 32
    assert not predictor.model.training


def test_predict_is_sorted_by_probability(predictor: Predictor) -> None:
    for image in _images():
        predictions = predictor.predict(image, top_k=3)
        assert len(predictions) == 3
        assert all(isinstance(p, Prediction) for p in predictions)
        probabilities = [p.probability for p in predictions]
        assert probabilities == sorted(probabilities, reverse=True)
        assert {p.label for p in predictions} == set(SHAPE_CLASSES)


def test_probabilities_sum_to_one(predictor: Predictor) -> None:
    predictions = predictor.predict(_images(1)[0], top_k=len(SHAPE_CLASSES))
    assert math.isclose(sum(p.probability for p in predictions), 1.0, rel_tol=1e-5)
    assert all(0.0 <= p.probability <= 1.0 for p in predictions)


def test_top_k_is_clipped_and_validated(predictor: Predictor) -> None:
    image = _images(1)[0]
    assert len(predictor.predict(image, top_k=100)) == len(SHAPE_CLASSES)
    top_one = predictor.predict(image, top_k=1)
    assert len(top_one) == 1
    assert top_one[0] == predictor.predict(image, top_k=3)[0]
    for bad in (0, -1):
        with pytest.raises(ValueError):
            predictor.predict(image, top_k=bad)


def test_predict_batch_matches_predict(predictor: Predictor) -> None:
    images = _images(5)
    batch = predictor.predict_batch(images, top_k=3)
    assert len(batch) == len(images)
    for image, ranked in zip(images, batch, strict=True):
        single = predictor.predict(image, top_k=3)
        assert [p.label for p in ranked] == [p.label for p in single]
        for a, b in zip(ranked, single, strict=True):
            assert a.probability == pytest.approx(b.probability, abs=1e-5)
    assert predictor.predict_batch([]) == []


def test_accepts_any_image_mode_and_size(predictor: Predictor) -> None:
    base = _images(1)[0].resize((90, 60))
    for image in (base.convert("RGBA"), base.convert("L"), base.convert("P"), base):
        assert len(predictor.predict(image)) == 3


def test_concurrent_predictions_agree_with_sequential(predictor: Predictor) -> None:
    images = _images(12)
    expected = [predictor.predict(image) for image in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(predictor.predict, images * 3))
    for index, ranked in enumerate(results):
        reference = expected[index % len(images)]
        assert [p.label for p in ranked] == [p.label for p in reference]
        for a, b in zip(ranked, reference, strict=True):
            assert a.probability == pytest.approx(b.probability, abs=1e-5)


def test_load_garbage_file_is_value_error(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ValueError):
        Predictor.load(path)


def test_load_unknown_template_is_value_error(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_bundle(ModelBundle("no-such-net", ["a", "b"], 32, {"w": torch.zeros(1)}), path)
    with pytest.raises(ValueError, match="no-such-net"):
        Predictor.load(path)


def test_load_mismatched_weights_is_value_error(tmp_path: Path, random_bundle_path: Path) -> None:
    bundle = load_bundle(random_bundle_path)
    path = tmp_path / "model.pt"
    # Two labels but a three-class head: the state dict cannot fit the rebuilt model.
    save_bundle(ModelBundle(bundle.template, ["a", "b"], 32, bundle.state_dict), path)
    with pytest.raises(ValueError, match="do not fit"):
        Predictor.load(path)
