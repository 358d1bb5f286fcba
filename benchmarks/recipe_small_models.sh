#!/usr/bin/env bash
# How the two 16-channel models were made, step by step, on this project's 2-core CPU (no GPU): the bundled
# registry/models/atac-denoiser-counts-small.onnx and benchmarks/models/hsc_annotation_small.onnx (a benchmark row
# only: its int8 trunk failed the quality gate, see its RESULTS.md section). About 65 minutes. Not run by CI.
# Needs ../shared/data/hsc. Same architecture, data and losses as the 32-channel models (recipe_bundled_model.sh,
# recipe_channel_models.sh) with half the channels: a quarter of the trunk's multiply-adds. Both rows train side
# by side from fresh weights, one core each (OMP_NUM_THREADS=1).
#
# Usage: bash benchmarks/recipe_small_models.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-work/small}
HSC=../shared/data/hsc
ANN=$HSC/annotation
ARCH=benchmarks/searches/small_dilated1d/best_model.json   # cpu_resample_dilated1d's layers, 16 channels
TRAIN="python benchmarks/train_architecture.py"
export OMP_NUM_THREADS=1
mkdir -p "$WORK"

# 0. The resampling sources of recipe_channel_models.sh: chr1 to train, chr2 to validate. (3 s each)
source benchmarks/hsc_sources.sh
prepare_hsc_sources "$WORK/data_counts" "$WORK/data_annotation"

# 1-3. One row per model, the two side by side: 10 epochs log-mse (lr 0.05), 30 epochs log-mse+pearson
#      (lr 0.02), 5 epochs with linear-scale MSE added (lr 0.01), 6,000 windows each; then export. Wall times, the
#      two rows side by side: 11, 26 and 4 min.
train_row() {
    local row=$1 data="--train $WORK/data_$1/train.npz --val $WORK/data_$1/val.npz"
    $TRAIN --config $ARCH $data --epochs 10 --loss log-mse --lr-max 0.05 --windows 6000 --seed 1 --out "$WORK/${row}_1"
    $TRAIN --init "$WORK/${row}_1" $data --epochs 30 --loss log-mse+pearson --lr-max 0.02 --windows 6000 --seed 11 \
        --out "$WORK/${row}_2"
    $TRAIN --init "$WORK/${row}_2" $data --epochs 5 --loss log-mse+pearson+mse --lr-max 0.01 --windows 6000 --seed 21 \
        --out "$WORK/${row}_3"
    atacdenoise registry export "$WORK/${row}_3" --output "$WORK/small_$row.onnx" --data "$WORK/data_$row/val.npz" \
        --genome hg19
}
train_row counts > "$WORK/counts.log" 2>&1 &
train_row annotation > "$WORK/annotation.log" 2>&1 &
wait
cp "$WORK/small_annotation.onnx" benchmarks/models/hsc_annotation_small.onnx

# 4. (11 min) The counts row: 10 more epochs of step 3's loss at lr 0.005 (chr2 validation Pearson 0.917 -> 0.922;
#    bench_quality: 5M Pearson 0.964 -> 0.967, AUPRC 0.821 -> 0.823), then export.
$TRAIN --init "$WORK/counts_3" --train "$WORK/data_counts/train.npz" --val "$WORK/data_counts/val.npz" --epochs 10 \
    --loss log-mse+pearson+mse --lr-max 0.005 --windows 6000 --seed 41 --out "$WORK/counts_4"
atacdenoise registry export "$WORK/counts_4" --output registry/models/atac-denoiser-counts-small.onnx \
    --data "$WORK/data_counts/val.npz" --genome hg19
