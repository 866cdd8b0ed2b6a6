#!/usr/bin/env bash
# The GPU suite: the tests marked `gpu` and the GPU benchmark rows, on a machine with a
# CUDA GPU and a CUDA build of torch. Run from the repository root:
#   bash benchmarks/gpu_check.sh            (PYTHON=... to choose the interpreter)
set -euo pipefail
PYTHON="${PYTHON:-python}"
"$PYTHON" - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"no CUDA device visible to torch {torch.__version__}: the GPU suite needs one")
print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
PY
"$PYTHON" -m pytest tests/test_gpu.py -m gpu -q -p no:randomly -s -rs
"$PYTHON" -m benchmarks.gpu
