#!/usr/bin/env bash
# GPU checks of issue 20, one command, about 10 minutes on one GPU:
#
#   bash benchmarks/gpu_issue20.sh OUTDIR [DATA]      # DATA: default ../shared/data
#
# 1. compiled vs eager training steps, FP and TTQ (benchmarks/train_step.py --compile):
#    compiled TTQ/FP <= 1.15, compiled faster than eager, 0 recompilations per model;
# 2. the CUDA tests: CPU and CUDA analysis.json of the shipped ternary ResNet-20 agree
#    within 1e-5, most bit-identical (tests/test_device_independence.py), measured counts on CUDA equal the CPU's
#    (tests/test_ternary_ops.py::test_cuda_matches_cpu), the compile test;
# 3. analyze vs a plain eval pass on the GPU (benchmarks/analysis.py --device cuda).
# Works without installing the package (PYTHONPATH=.).  Everything is logged to OUTDIR.
set -uo pipefail
OUTDIR=${1:?output folder}
DATA=${2:-../shared/data}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUTDIR"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUTDIR/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUTDIR/gpu.txt"
python3 benchmarks/train_step.py --devices cuda --compile --rounds 5 2>&1 | tee "$OUTDIR/compile.txt"
TTQ_TEST_ARCHIVE=${TTQ_TEST_ARCHIVE:-$DATA/cifar10-jpeg.tar.gz} python3 -m pytest -q -s \
  tests/test_device_independence.py tests/test_compile.py \
  "tests/test_ternary_ops.py::test_cuda_matches_cpu" 2>&1 | tee "$OUTDIR/cuda_tests.txt"
python3 benchmarks/analysis.py --device cuda --data-dir "$DATA" --images 2000 --rounds 3 \
  --skip-memory --compare-exact 2>&1 | tee "$OUTDIR/analysis_cuda.txt"
