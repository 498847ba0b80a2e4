"""Model bundles: round trip, atomic writes, and refusal of foreign or unsafe files."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from workers.ml.checkpoint import ModelBundle, load_bundle, save_bundle, write_atomically


def _bundle() -> ModelBundle:
    return ModelBundle(
        template="leptonnet",
        labels=["cat", "dog"],
        input_size=48,
        state_dict={"layer.weight": torch.arange(6.0).view(2, 3), "layer.n": torch.tensor(3)},
    )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "model.pt"
    save_bundle(_bundle(), path)
    loaded = load_bundle(path)
    assert loaded.template == "leptonnet"
    assert loaded.labels == ["cat", "dog"]
    assert loaded.input_size == 48
    assert torch.equal(loaded.state_dict["layer.weight"], _bundle().state_dict["layer.weight"])
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp files left


def test_save_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")
    save_bundle(_bundle(), path)
    assert load_bundle(path).labels == ["cat", "dog"]


def test_channels_last_weights_are_saved_contiguous(tmp_path: Path) -> None:
    weight = torch.randn(4, 3, 3, 3).contiguous(memory_format=torch.channels_last)
    bundle = ModelBundle("leptonnet", ["a"], 32, {"w": weight})
    save_bundle(bundle, tmp_path / "m.pt")
    loaded = load_bundle(tmp_path / "m.pt").state_dict["w"]
    assert loaded.is_contiguous()
    assert torch.equal(loaded, weight)


@pytest.mark.parametrize(
    "content",
    [b"", b"definitely not a model", b"PK\x03\x04" + b"\x00" * 64],
    ids=["empty", "text", "broken-zip"],
)
def test_garbage_file_is_value_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="model.pt"):
        load_bundle(path)


def test_foreign_torch_file_is_value_error(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(2)}}, path)
    with pytest.raises(ValueError, match="not a Lepton model bundle"):
        load_bundle(path)


class _Payload:
    """Stands in for an attacker's object; weights_only loading must refuse to build it."""

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (print, ("unpickled!",))


def test_arbitrary_pickles_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "lepton-model-bundle", "x": _Payload()}, path, pickle_protocol=2)
    with pytest.raises(ValueError):
        load_bundle(path)
    assert "unpickled!" not in capsys.readouterr().out
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Payload(), protocol=2))
    with pytest.raises(ValueError):
        load_bundle(raw)
    assert "unpickled!" not in capsys.readouterr().out


def test_invalid_fields_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    payload = {
        "format": "lepton-model-bundle",
        "version": 1,
        "template": "leptonnet",
        "labels": [],
        "input_size": 32,
        "state_dict": {},
    }
    torch.save(payload, path)
    with pytest.raises(ValueError, match="labels"):
        load_bundle(path)
    torch.save({**payload, "labels": ["a"], "version": 99}, path)
    with pytest.raises(ValueError, match="version"):
        load_bundle(path)
    with pytest.raises(ValueError, match="labels"):
        save_bundle(ModelBundle("leptonnet", ["a", "a"], 32, {}), tmp_path / "dup.pt")


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_bundle(tmp_path / "nope.pt")


def test_task_and_metadata_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    metadata = {"preprocessor": {"columns": [{"name": "x", "mean": 1.5}], "flag": None}}
    bundle = ModelBundle(
        "linear", ["price"], 4, {"w": torch.ones(1, 4)}, "tabular-regression", metadata
    )
    save_bundle(bundle, path)
    loaded = load_bundle(path)
    assert loaded.task == "tabular-regression"
    assert loaded.metadata == metadata


def test_bundles_written_before_task_and_metadata_load_as_classifiers(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(
        {
            "format": "lepton-model-bundle",
            "version": 1,
            "template": "leptonnet",
            "labels": ["a", "b"],
            "input_size": 32,
            "state_dict": {"w": torch.zeros(2)},
        },
        path,
    )
    loaded = load_bundle(path)
    assert loaded.task == "image-classification"
    assert loaded.metadata == {}


def test_metadata_must_be_plain_data(tmp_path: Path) -> None:
    for task, metadata in (("image-classification", {"w": torch.zeros(1)}), ("other", {})):
        with pytest.raises(ValueError, match="metadata|task"):
            save_bundle(ModelBundle("leptonnet", ["a"], 32, {}, task, metadata), tmp_path / "m.pt")
    assert not list(tmp_path.iterdir())


def test_write_atomically_leaves_only_the_target(tmp_path: Path) -> None:
    write_atomically({"x": torch.arange(3)}, tmp_path / "deep" / "state.pt")
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["state.pt"]
    assert torch.equal(torch.load(tmp_path / "deep" / "state.pt")["x"], torch.arange(3))
