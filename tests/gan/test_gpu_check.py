"""`scripts/gpu-check` as CI runs it (on the CPU, two steps): it sets itself up, trains the paper's
network through the project's loop, samples and stores, and prints every figure the README needs."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.conftest import REPO
from tests.servers import PATIENCE_S


def test_the_gpu_check_runs_on_a_cpu_and_prints_its_figures(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    env = {k: v for k, v in os.environ.items() if k not in {"HISTOTURING_DATA_DIR", "MEDIA_STORAGE"}}
    done = subprocess.run(
        [
            "bash",
            "scripts/gpu-check",
            "--device",
            "cpu",
            "--steps",
            "2",
            "--count",
            "8",
            "--json",
            str(figures),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=4 * PATIENCE_S,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"training: [\d,.]+ images/s \(batch 125, the paper's network, 2 steps", out), out
    assert re.search(r"of a measured bf16 matmul", out) and "GFLOP per step" in out
    assert re.search(r"sampling: [\d,.]+ patches/s generated, [\d,.]+ patches/s generated and stored", out)
    assert "with one batch nothing overlaps" in out  # 8 patches: the stored rate is not a steady one
    assert "one at a time; each image within 0 grey level(s)" in out and "within the tolerance" in out
    result = json.loads(figures.read_text())
    assert result["batch_size"] == 125 and result["steps"] == 2 and result["sampled"] == 8
    assert result["training_images_per_second"] > 0 and result["stored_per_second"] > 0
    # The paper's network: about 2.2 TFLOP a step at batch 125 (counted by PyTorch, not typed in).
    assert 1500 < result["step_gflop"] < 3000
    assert (
        result["reproducibility"]["repeatable"] and result["reproducibility"]["max_difference_to_alone"] == 0
    )
    assert result["datasheet_bf16_tflops"] is None  # a CPU has no datasheet figure here
