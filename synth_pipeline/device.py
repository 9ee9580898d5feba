"""Compute device choice: CUDA when present, CPU otherwise, overridable by SYNTH_DEVICE."""

import os


def pick_device(requested: str | None = None) -> str:
    choice = requested or os.environ.get("SYNTH_DEVICE") or "auto"
    if choice != "auto":
        return choice
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
