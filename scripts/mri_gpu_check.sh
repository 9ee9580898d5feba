#!/usr/bin/env bash
# Settles the MRI arm's full-budget question in one call on the first machine lent a GPU: the
# position-conditioned diffusion model and the best GAN of benchmarks/MRI.md (r3gan_positional) at
# the `full` budget on CUDA, same split and metrics as benchmarks/mri.py, within LIMIT_S seconds.
#
#   scripts/mri_gpu_check.sh [OUT_DIR]                 # default OUT_DIR: mri-gpu-check/
#   BUDGET=tiny DEVICE=cpu scripts/mri_gpu_check.sh    # the same path on CPU, as the tests run it
#                                                      # (they add REFERENCES=0: no fresh-subject / Colin27 rows)
#
# Writes OUT_DIR/mri_gpu_check.md (the table), .json (raw rows), montage.png and environment.txt
# (card, driver, torch/CUDA versions). benchmarks/mri.py rewrites the table after every model, so a
# run cut by the time limit still leaves the models it finished; the exit status is then 124.
# Needs a CUDA build of torch for DEVICE=cuda (the Makefile installs the CPU wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-mri-gpu-check}
BUDGET=${BUDGET:-full}
DEVICE=${DEVICE:-cuda}
LIMIT_S=${LIMIT_S:-600}
SUBJECTS=${SUBJECTS:-12}
MODELS=${MODELS:-diffusion r3gan_positional}
REFERENCES=${REFERENCES:-1}
PY=${PYTHON:-.venv/bin/python}

if [[ "$DEVICE" == cuda* ]] && ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "mri_gpu_check: DEVICE=$DEVICE but torch $("$PY" -c 'import torch; print(torch.__version__)') sees no CUDA device; install a CUDA build of torch, or run BUDGET=tiny DEVICE=cpu" >&2
  exit 2
fi
mkdir -p "$OUT"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "budget: $BUDGET  device: $DEVICE  limit: ${LIMIT_S}s  subjects: $SUBJECTS  models: $MODELS  references: $REFERENCES"
  "$PY" -c 'import platform, torch; print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda, "cpus", __import__("os").cpu_count())'
  if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; fi
} > "$OUT/environment.txt"
# shellcheck disable=SC2086  # MODELS is a list of names
timeout "$LIMIT_S" "$PY" benchmarks/mri.py --models $MODELS --budget "$BUDGET" --device "$DEVICE" \
  --subjects "$SUBJECTS" $([ "$REFERENCES" = 0 ] && echo --no-references) --out "$OUT/mri_gpu_check.md" --raw "$OUT/mri_gpu_check.json" --montage "$OUT/montage.png" \
  --note "scripts/mri_gpu_check.sh: budget $BUDGET on $DEVICE, limit ${LIMIT_S}s; environment in environment.txt."
echo "mri_gpu_check: figures in $OUT/mri_gpu_check.md"
