"""synth-pipeline: gated, audited synthetic releases of sensitive medical tables."""

__version__ = "0.1.0"
