#!/usr/bin/env bash
# GPU reproduction of the closing-note numbers (issue 2): the TTQ/FP step-time benchmark,
# then ResNet-20 (ARCH=resnet32/44/56 for the others) FP for 40 epochs on the full
# CIFAR-10 JPEG copy, then TTQ fine-tuning from its best checkpoint for 40 epochs: the
# defaults (Wp = Wn = 1, the authors' parametrisation), least-squares initial scales, and
# the plain-STE ablation, run side by side on the one GPU.
#
#   bash benchmarks/gpu_full_run.sh DATA_ARCHIVE OUTDIR [STAGE ...]
#
# STAGE: bench, fp, ttq (default: all three, in that order); ttq needs OUTDIR/fp/best.pt.
# Works without installing the package (PYTHONPATH=.).  Every run writes OUTDIR/<run>/
# {last.pt,best.pt,log.jsonl}; OUTDIR/bench.txt holds the benchmark.
set -uo pipefail
DATA=${1:?data archive or folder}
OUTDIR=${2:?output folder}
shift 2
STAGES=${*:-bench fp ttq}
EPOCHS=${EPOCHS:-40}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUTDIR"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUTDIR/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUTDIR/gpu.txt"

ARCH=${ARCH:-resnet20}
train() { python3 -m ttq_core.train --arch "$ARCH" --data-dir "$DATA" --no-progress ${EXTRA:-} "$@"; }
has() { [[ " $STAGES " == *" $1 "* ]]; }

if has bench; then
  python3 benchmarks/train_step.py --devices cuda --compile --rounds 5 2>&1 | tee "$OUTDIR/bench.txt"
fi
if has fp; then
  train --mode fp --epochs "$EPOCHS" --out "$OUTDIR/fp" 2>&1 | tee "$OUTDIR/fp.txt"
fi
has ttq || exit 0
INIT="$OUTDIR/fp/best.pt"
train --mode ttq --init "$INIT" --epochs "$EPOCHS" --out "$OUTDIR/ttq" > "$OUTDIR/ttq.txt" 2>&1 &
train --mode ttq --init "$INIT" --epochs "$EPOCHS" --scale-init least-squares --out "$OUTDIR/ttq_lsq" > "$OUTDIR/ttq_lsq.txt" 2>&1 &
train --mode ttq --init "$INIT" --epochs "$EPOCHS" --no-grad-scaling --out "$OUTDIR/ttq_ste" > "$OUTDIR/ttq_ste.txt" 2>&1 &
wait
tail -n 3 "$OUTDIR"/ttq*.txt
