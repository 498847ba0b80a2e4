"""Model templates: shapes across input sizes, size bounds, template lookup, pretrained weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workers.ml.architectures import (
    IMAGE_TEMPLATES,
    TEMPLATES,
    LeptonNet,
    build_model,
    cached_pretrained_path,
    image_template,
    load_pretrained,
)
from workers.ml.checkpoint import ModelBundle, save_bundle


@pytest.mark.parametrize("size", [32, 64, 224])
def test_output_shape_for_input_sizes(size: int) -> None:
    torch.manual_seed(0)
    model = build_model("leptonnet", num_classes=5).eval()
    with torch.inference_mode():
        logits = model(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 5)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("template", sorted(IMAGE_TEMPLATES))
def test_every_template_runs_at_its_smallest_and_default_size(template: str) -> None:
    spec = image_template(template)
    assert 32 <= spec.min_input_size <= spec.default_input_size <= spec.max_input_size <= 224
    torch.manual_seed(0)
    model = build_model(template, num_classes=4)
    # Train mode with a batch of two: BatchNorm at a 1x1 feature map still has two values.
    model(torch.randn(2, 3, spec.min_input_size, spec.min_input_size)).sum().backward()
    with torch.inference_mode():
        size = spec.default_input_size
        logits = model.eval()(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 4)
    assert torch.isfinite(logits).all()


def test_trains_in_train_mode() -> None:
    model = LeptonNet(num_classes=3)
    logits = model(torch.randn(4, 3, 32, 32))
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_parameter_count_is_small() -> None:
    count = sum(p.numel() for p in build_model("leptonnet", num_classes=3).parameters())
    assert 100_000 <= count <= 300_000


def test_leptonnet_sizes_grow_and_the_old_name_is_size_s() -> None:
    def count(template: str) -> int:
        return sum(p.numel() for p in build_model(template, num_classes=3).parameters())

    assert count("leptonnet") == count("leptonnet-s") < count("leptonnet-m") < count("leptonnet-l")
    old = build_model("leptonnet", num_classes=3).state_dict()
    new = build_model("leptonnet-s", num_classes=3).state_dict()
    assert {k: v.shape for k, v in old.items()} == {k: v.shape for k, v in new.items()}


def test_templates_registry() -> None:
    assert isinstance(TEMPLATES["leptonnet"](4), LeptonNet)
    assert set(TEMPLATES) == set(IMAGE_TEMPLATES)
    catalogue = IMAGE_TEMPLATES["resnet18"].as_dict()
    assert catalogue["task"] == "image-classification"
    assert catalogue["default_input_size"] == IMAGE_TEMPLATES["resnet18"].default_input_size


def test_unknown_template_names_allowed_ones() -> None:
    with pytest.raises(ValueError, match="leptonnet"):
        build_model("resnet9000", num_classes=3)


def test_num_classes_must_be_positive() -> None:
    with pytest.raises(ValueError):
        build_model("leptonnet", num_classes=0)


def test_pretrained_file_names_are_torchvisions() -> None:
    from torchvision.models import MobileNet_V3_Small_Weights, ResNet18_Weights

    # Reading the enums only builds URLs; nothing is fetched.
    for template, weights in (
        ("resnet18", ResNet18_Weights.IMAGENET1K_V1),
        ("mobilenet_v3_small", MobileNet_V3_Small_Weights.IMAGENET1K_V1),
    ):
        assert IMAGE_TEMPLATES[template].pretrained_file == Path(weights.url).name
    assert IMAGE_TEMPLATES["leptonnet"].pretrained_file is None


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch home: torch.hub.get_dir() reads TORCH_HOME on every call."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_pretrained_weights_are_found_in_the_hub_cache_only(torch_home: Path) -> None:
    from torchvision.models import mobilenet_v3_small

    assert Path(torch.hub.get_dir()) == torch_home.parent
    assert cached_pretrained_path("mobilenet_v3_small") is None
    assert cached_pretrained_path("leptonnet") is None

    # A real torchvision-layout checkpoint with 1000 ImageNet classes, as the cache would hold.
    torch.manual_seed(5)
    source = mobilenet_v3_small(weights=None).state_dict()
    torch_home.mkdir(parents=True)
    torch.save(source, torch_home / "mobilenet_v3_small-047dcff4.pth")
    found = cached_pretrained_path("mobilenet_v3_small")
    assert found == torch_home / "mobilenet_v3_small-047dcff4.pth"
    assert cached_pretrained_path("resnet18") is None

    torch.manual_seed(6)
    model = build_model("mobilenet_v3_small", num_classes=3)
    copied = load_pretrained(model, "mobilenet_v3_small", found)
    loaded = model.state_dict()
    body = [key for key in loaded if not key.startswith("classifier.3.")]
    assert copied == len(body)
    assert all(torch.equal(loaded[key], source[key]) for key in body)
    assert loaded["classifier.3.weight"].shape == (3, 1024)  # the head keeps its own classes


def test_pretrained_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    torch.save(build_model("leptonnet", num_classes=3).state_dict(), path)
    with pytest.raises(ValueError, match="does not fit template 'leptonnet-m'"):
        load_pretrained(build_model("leptonnet-m", num_classes=3), "leptonnet-m", path)
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable weights file"):
        load_pretrained(build_model("leptonnet", num_classes=3), "leptonnet", path)
    with pytest.raises(FileNotFoundError):
        load_pretrained(build_model("leptonnet", num_classes=3), "leptonnet", tmp_path / "nope")


def test_a_model_bundle_can_seed_another_label_set(tmp_path: Path) -> None:
    torch.manual_seed(1)
    earlier = build_model("leptonnet", num_classes=3)
    path = tmp_path / "model.pt"
    save_bundle(ModelBundle("leptonnet", ["a", "b", "c"], 32, earlier.state_dict()), path)
    model = build_model("leptonnet-s", num_classes=5)
    load_pretrained(model, "leptonnet-s", path)
    assert torch.equal(model.state_dict()["stem.0.weight"], earlier.state_dict()["stem.0.weight"])
    assert model.state_dict()["head.weight"].shape == (5, 256)
