"""benchmarks/train.py keeps working: a tiny run writes a complete result file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[3]
TINY = ["--images", "24", "--batch-size", "8", "--epochs", "1", "--repeat", "1"]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_train", REPO_ROOT / "benchmarks" / "train.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.mark.parametrize(
    "interleave", [["--interleave", "steps"], ["--turn-steps", "2"], ["--interleave", "runs"]]
)
def test_tiny_benchmark_run_writes_its_result(tmp_path: Path, interleave: list[str]) -> None:
    output = tmp_path / "train.json"
    _bench().main([*TINY, "--device", "cpu", *interleave, "--output", str(output)])
    result = json.loads(output.read_text())
    assert result["steps"] == 3 and result["images"] == 24
    assert result["interleave"] == ("runs" if "runs" in interleave else "steps")
    assert result["portal"]["images_per_second"] > 0 and result["bare"]["images_per_second"] > 0
    assert result["ratio"] > 0 and len(result["round_ratios"]) == 1
    assert result["cpu_time_ratio"] > 0
    assert result["machine"]["device"] == "cpu" and result["machine"]["torch"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tiny_benchmark_run_on_cuda(tmp_path: Path) -> None:
    output = tmp_path / "train.json"
    _bench().main([*TINY, "--device", "cuda", "--output", str(output)])
    result = json.loads(output.read_text())
    assert result["interleave"] == "steps" and result["turn_steps"] == 16
    assert result["ratio"] > 0
    assert result["machine"]["device"] == "cuda" and result["machine"]["gpu"]
