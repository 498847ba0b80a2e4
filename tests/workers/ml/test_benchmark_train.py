"""benchmarks/train.py keeps working: a tiny run writes a complete result file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_tiny_benchmark_run_writes_its_result(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_train", REPO_ROOT / "benchmarks" / "train.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    output = tmp_path / "train.json"
    tiny = ["--images", "24", "--batch-size", "8", "--epochs", "1", "--repeat", "1"]
    bench.main([*tiny, "--device", "cpu", "--output", str(output)])
    result = json.loads(output.read_text())
    assert result["steps"] == 3 and result["images"] == 24
    assert result["portal"]["images_per_second"] > 0 and result["bare"]["images_per_second"] > 0
    assert result["ratio"] > 0
    assert result["machine"]["device"] == "cpu" and result["machine"]["torch"]
