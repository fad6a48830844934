#!/usr/bin/env bash
# Issue 19's evidence on one GPU, in one call (about 10 minutes on an H200): the 40-epoch
# ResNet-20 TTQ fine-tune from the committed FP checkpoint with batch-norm statistics
# re-estimated under the training transform (today's defaults), side by side with the
# ResNet-32 FP run; then ResNet-32 TTQ from that FP run's best checkpoint (Table 1's second
# row).  A fourth run repeats the ResNet-20 fine-tune with --bn-recal-transform plain: its
# weights are the same steps (the re-estimation never changes a training step), so the
# pair is the A/B of the fix on a full run.
#
#   bash benchmarks/gpu_issue19.sh DATA_ARCHIVE OUTDIR
#
# Works without installing the package (PYTHONPATH=.).  Every run writes OUTDIR/<run>/
# {last.pt,best.pt,log.jsonl} and OUTDIR/<run>.txt (console).
set -uo pipefail
DATA=${1:?data archive or folder}
OUTDIR=${2:?output folder}
EPOCHS=${EPOCHS:-40}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUTDIR"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUTDIR/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUTDIR/gpu.txt"
FP20=benchmarks/results/h200-2026-11-26/resnet20_fp_best.pt
train() { local out=$1; shift; python3 -m ttq_core.train --data-dir "$DATA" --no-progress \
            --epochs "$EPOCHS" --out "$OUTDIR/$out" "$@" > "$OUTDIR/$out.txt" 2>&1; }

train r20-ttq --arch resnet20 --mode ttq --init "$FP20" &
train r20-ttq-plain --arch resnet20 --mode ttq --init "$FP20" --bn-recal-transform plain &
train r32-fp --arch resnet32 --mode fp &
FP32_PID=$!
wait "$FP32_PID"
train r32-ttq --arch resnet32 --mode ttq --init "$OUTDIR/r32-fp/best.pt" &
wait
tail -n 2 "$OUTDIR"/*.txt
