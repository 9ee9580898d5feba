"""scripts/mri_gpu_check.sh: the one call a GPU machine gets, exercised on CPU at the tiny budget."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "mri_gpu_check.sh"


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), str(tmp_path / "out")], env={**os.environ, "PYTHON": sys.executable, **env},
                          capture_output=True, text=True, timeout=900)


def test_the_gpu_check_runs_both_models_on_cpu_at_the_tiny_budget(tmp_path):
    done = _run(tmp_path, BUDGET="tiny", DEVICE="cpu", SUBJECTS="4", REFERENCES="0", LIMIT_S="840")
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "out"
    rows = {r["model"]: r for r in json.loads((out / "mri_gpu_check.json").read_text())}
    for model in ("diffusion", "r3gan_positional"):
        assert rows[model]["fid"] > 0 and rows[model]["fit_s"] > 0, model
    table = (out / "mri_gpu_check.md").read_text()
    assert "| diffusion |" in table and "| r3gan_positional |" in table and "budget tiny on cpu" in table
    assert "torch" in (out / "environment.txt").read_text() and (out / "montage.png").stat().st_size > 0


def test_asking_for_cuda_without_it_is_one_clear_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = _run(tmp_path, DEVICE="cuda")
    assert done.returncode == 2 and "sees no CUDA device" in done.stderr
    assert not (tmp_path / "out").exists()
