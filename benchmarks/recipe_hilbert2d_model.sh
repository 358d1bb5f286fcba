#!/usr/bin/env bash
# How registry/models/atac-denoiser-hilbert2d.onnx (the seed's Hilbert-2D idea, with the per-bin readout
# that makes it learn: see benchmarks/diagnose_hilbert2d.py) was made, step by step, on this project's
# 2-core CPU (no GPU). Not run by CI. Needs ../shared/data/hsc. Wall times were measured with one
# thread while other work shared the machine.
#
# Usage: bash benchmarks/recipe_hilbert2d_model.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=../shared/data/hsc
ANN=$DATA/annotation
WORK=${1:-work/hilbert2d_model}
mkdir -p "$WORK"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# 0. The default model's training data: a resampling source on chr1 (the 80M library's insertions,
#    recovered from its coverage, thinned afresh every epoch to 0.1-1x the 5M library) and chr2 pairs;
#    the blacklist keeps training targets out (as recipe_channel_models.sh's hsc_counts).
atacdenoise prepare --insertions $DATA/noisy_5M.tn5_insertions.bed.gz \
    --clean-bigwig $DATA/clean_80M.coverage.bw --clean-peaks $DATA/clean_80M.peaks.bed \
    --chrom-sizes $DATA/chrom.sizes --train-chroms chr1 --val-chroms chr2 --depths 0.1,0.2,1.0 \
    --n-train 6000 --regions $DATA/clean_80M.labelled_regions.bed --resample \
    --annotation blacklist=$ANN/blacklist.bed --outdir "$WORK/data"
TRAIN="--train $WORK/data/train.npz --val $WORK/data/val.npz"

# 1. (15 min) The architecture (benchmarks/models/hilbert2d_per_bin.json: two 5x5 convs, two 3x3 residual
#    blocks, a 3x3 conv fed the input image again, 16 channels, heads per bin; 18,610 parameters) from
#    fresh weights: one SGDR cycle of 12 epochs x 6,000 windows, lr 0.05 -> 0, log-MSE + Pearson.
python benchmarks/train_architecture.py --config benchmarks/models/hilbert2d_per_bin.json $TRAIN \
    --epochs 12 --loss log-mse+pearson --lr-max 0.05 --windows 6000 --out "$WORK/step1"

# 2. (27 min) One more cycle of 20 epochs, lr 0.02 -> 0.
python benchmarks/train_architecture.py --init "$WORK/step1" $TRAIN \
    --epochs 20 --loss log-mse+pearson --lr-max 0.02 --windows 6000 --seed 11 --out "$WORK/step2"

# 3. (21 min) The annotation the default model reads (tss, CpG islands, CTCF sites; the blacklist only keeps
#    training targets out): the same windows with three more input channels, added at zero weight (the same
#    function at the start), then 14 epochs, lr 0.02 -> 0. Without this step the model ties the best
#    Gaussian smoothing on Pearson's side but not on AUPRC (0.5M: 0.837 / 0.522 vs 0.810 / 0.567).
atacdenoise prepare --insertions $DATA/noisy_5M.tn5_insertions.bed.gz \
    --clean-bigwig $DATA/clean_80M.coverage.bw --clean-peaks $DATA/clean_80M.peaks.bed \
    --chrom-sizes $DATA/chrom.sizes --train-chroms chr1 --val-chroms chr2 --depths 0.1,0.2,1.0 \
    --n-train 6000 --regions $DATA/clean_80M.labelled_regions.bed --resample \
    --annotation tss=$ANN/tss.bed --annotation cpg_islands=$ANN/cpg_islands.bed \
    --annotation ctcf_sites=$ANN/ctcf_sites.bed --annotation blacklist=$ANN/blacklist.bed --outdir "$WORK/data_annotation"
python benchmarks/train_architecture.py --init "$WORK/step2" --train "$WORK/data_annotation/train.npz" \
    --val "$WORK/data_annotation/val.npz" --epochs 14 --loss log-mse+pearson --lr-max 0.02 --windows 6000 \
    --seed 21 --out "$WORK/step3"

# 4. Export with its input contract, checked against PyTorch on real windows.
atacdenoise registry export "$WORK/step3" --output "$WORK/atac-denoiser-hilbert2d.onnx" \
    --data "$WORK/data_annotation/val.npz" --genome hg19
