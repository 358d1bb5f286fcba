#!/usr/bin/env bash
# Real yeast ATAC-seq (../shared/data/yeast, see ../shared/data/README.md) -> a benchmark data set:
# deep truth (coverage + MACS3 peaks), shallow twins at p = 0.1 and 0.025, scored regions without the
# chrXII rDNA pile-up, training data with chrVII held out for validation, and baselines on chrVII.
#
# Usage: bash benchmarks/prepare_yeast.sh [WORKDIR]      (default: work/yeast under the repo root)
# Needs the installed package (`atacdenoise` on PATH) and macs3; YEAST_DATA overrides the data folder.
# Wall times in (..) were measured on 2 CPU cores; the whole run takes ~2 min 10 s, 90 s of it Gaussian smoothing.
# Works with whatever chromosomes the fragments hold: chromosomes of chrom.sizes without data are skipped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${YEAST_DATA:-$ROOT/../shared/data/yeast}
mkdir -p "${1:-$ROOT/work/yeast}"
W=$(cd "${1:-$ROOT/work/yeast}" && pwd)
VAL=chrVII              # validation chromosome
FRACTIONS=(0.1 0.025)   # shallow twins: keep each fragment with probability p
GSIZE=1.2e7             # MACS3 -g, as the data README says

# --- 0. chromosomes: those of chrom.sizes that the fragments hold, minus chrM (0.1 s) ---------------
# (text inputs ignore --exclude-chroms, which filters BAMs only: chrM is dropped through this file)
zcat "$DATA/fragments.tsv.gz" | cut -f1 | sort -u > "$W/fragment_chroms.txt"
awk 'NR == FNR {has[$1]; next} ($1 in has) && $1 != "chrM"' "$W/fragment_chroms.txt" "$DATA/chrom.sizes" \
  > "$W/chrom.sizes"
TRAIN=$(awk -v val="$VAL" '$1 != val {print $1}' "$W/chrom.sizes" | paste -sd, -)
grep -qx "$VAL" <(cut -f1 "$W/chrom.sizes") || { echo "prepare_yeast: no $VAL in the fragments" >&2; exit 1; }
echo "training chromosomes: $TRAIN; validation: $VAL" >&2

# --- 1. deep insertions, both ends of every fragment (1.3 s) -----------------------------------------
atacdenoise insertions --input "$DATA/fragments.tsv.gz" --chrom-sizes "$W/chrom.sizes" \
  --output "$W/deep.insertions.bed.gz" --stats > "$W/deep.insertions.stats.json"

# --- 2. shallow twins: one seeded draw per fragment line, so both ends stay together; the 0.025 twin
#        is a subset of the 0.1 twin (one uniform per fragment serves both fractions) (0.7 s)
atacdenoise subsample --input "$DATA/fragments.tsv.gz" --fraction "$(IFS=,; echo "${FRACTIONS[*]}")" --seed 1 \
  --output "$W/shallow_{fraction}.fragments.tsv.gz"
for p in "${FRACTIONS[@]}"; do   # (0.5 s each)
  atacdenoise insertions --input "$W/shallow_$p.fragments.tsv.gz" --chrom-sizes "$W/chrom.sizes" \
    --output "$W/shallow_$p.insertions.bed.gz"
done

# --- 3. truth: per-base (1 bp bins) coverage of insertions extended +-100 bp (2.6 s) ------------------
atacdenoise bin --input "$W/deep.insertions.bed.gz" --chrom-sizes "$W/chrom.sizes" --bin-size 1 \
  --out-prefix "$W/deep.coverage"
rm -rf "$W/deep.coverage.tracks"   # the 1 bp array store is not used (windows/prepare read the bigWig)
# MACS3 on the whole deep library: -f BED --nomodel --shift -100 --extsize 200 --keep-dup all -q 0.05
# (plus -B --SPMR for the pileup), -g as the README says (12 s)
atacdenoise peaks --input "$W/deep.insertions.bed.gz" --chrom-sizes "$W/chrom.sizes" --genome-size "$GSIZE" \
  --out-prefix "$W/deep.macs"

# --- 4. scored regions: whole chromosomes minus the rDNA pile-up found in the data; truth peaks there
#        dropped (1.5 s)
python "$ROOT/benchmarks/make_yeast_regions.py" --insertions "$W/deep.insertions.bed.gz" \
  --chrom-sizes "$W/chrom.sizes" --output "$W/regions.bed" --mask-output "$W/masked.bed" \
  --peaks-in "$W/deep.macs.narrowPeak" --peaks-out "$W/deep.peaks.narrowPeak" 2>&1 | tee "$W/regions.log"

# --- 5. training data, chrVII held out. Depths are relative to the shallow twin (1.0 = the twin):
#        p=0.1 twin, depths 0.25..1.0 -> 2.5-10 % of the deep library;
#        p=0.025 twin, depths 0.25..1.0 -> 0.6-2.5 % (0.6 % is the README's HSC-0.5M-like p = 0.006).
#        With --resample train.npz is a source that thins the deep insertions afresh every epoch
#        (6000 windows per epoch); val.npz tiles chrVII at depths 0.25 and 1.0 of the twin (2.5 s each)
for p in "${FRACTIONS[@]}"; do
  atacdenoise prepare --insertions "$W/shallow_$p.insertions.bed.gz" --clean-bigwig "$W/deep.coverage.bw" \
    --clean-peaks "$W/deep.peaks.narrowPeak" --clean-insertions "$W/deep.insertions.bed.gz" \
    --chrom-sizes "$W/chrom.sizes" --regions "$W/regions.bed" --train-chroms "$TRAIN" --val-chroms "$VAL" \
    --resample --depths 0.25,1.0 --n-train 6000 --outdir "$W/data_$p"
done

# --- 6. baselines on chrVII, per base inside the regions, against the deep truth ----------------------
mkdir -p "$W/baselines"
for p in "${FRACTIONS[@]}"; do
  # raw shallow coverage, 1 bp bins, insertion counts like the truth (evaluate --model-units both scales both) (1-1.5 s)
  atacdenoise bin --input "$W/shallow_$p.insertions.bed.gz" --chrom-sizes "$W/chrom.sizes" --bin-size 1 \
    --out-prefix "$W/shallow_$p.coverage"
  rm -rf "$W/shallow_$p.coverage.tracks"
  # MACS3 on the shallow twin, same settings as the truth (1.3-2.4 s)
  atacdenoise peaks --input "$W/shallow_$p.insertions.bed.gz" --chrom-sizes "$W/chrom.sizes" \
    --genome-size "$GSIZE" --out-prefix "$W/shallow_$p.macs"
done
# Gaussian smoothing of the raw coverage (benchmarks/bench_quality.py's baseline and its sd grid): sd chosen
# by AUPRC on the training chromosomes' regions, never chrVII; writes chrVII only, in model units (tracks/depth.py)
# (88 s: 5 sds x 8.4 Mb x 2 twins, scipy's direct convolution)
rm -f "$W"/baselines/shallow_*.gaussian_sd*.bw
python - "$ROOT" "$W" "$VAL" "$TRAIN" "${FRACTIONS[@]}" <<'EOF'
import sys
root, W, val, train, *fractions = sys.argv[1:]
sys.path.insert(0, f"{root}/benchmarks")
import numpy as np
from scipy.ndimage import gaussian_filter1d
from bench_quality import SDS
from atacdenoise.evaluate.evaluate import _model_units_scale
from atacdenoise.metrics import auprc
from atacdenoise.io.bigwig import read_bigwig, write_bigwig
from atacdenoise.io.chromsizes import read_chrom_sizes
from atacdenoise.io.narrowpeak import interval_mask, read_peaks

sizes, train = read_chrom_sizes(f"{W}/chrom.sizes"), train.split(",")
peaks, regions = read_peaks(f"{W}/deep.peaks.narrowPeak"), read_peaks(f"{W}/regions.bed")
scored = {c: interval_mask(regions.get(c), sizes[c]) for c in train}
labels = np.concatenate([interval_mask(peaks.get(c), sizes[c])[scored[c]] for c in train])
for p in fractions:
    raw_bw = f"{W}/shallow_{p}.coverage.bw"
    raw = {c: read_bigwig(raw_bw, c) for c in train}
    auc = {sd: auprc(np.concatenate([gaussian_filter1d(raw[c], sd)[scored[c]] for c in train]), labels) for sd in SDS}
    sd = max(auc, key=auc.get)
    print(f"p={p}: AUPRC on the training chromosomes by sd {({k: round(v, 4) for k, v in auc.items()})}: "
          f"sd {sd}", file=sys.stderr)
    smoothed = gaussian_filter1d(read_bigwig(raw_bw, val), sd) * _model_units_scale(raw_bw, 100)
    write_bigwig(f"{W}/baselines/shallow_{p}.gaussian_sd{sd}.bw", {val: sizes[val]}, [(val, smoothed)], 1)
EOF
# per-base metrics with `atacdenoise evaluate` (MSE in model units, tracks/depth.py; the MACS3 row's
# score is its SPMR pileup, so its MSE is left out) (2 s each)
EVAL=(--truth "$W/deep.coverage.bw" --truth-peaks "$W/deep.peaks.narrowPeak" --regions "$W/regions.bed"
      --chroms "$VAL" --json)
for p in "${FRACTIONS[@]}"; do
  atacdenoise evaluate --prediction "$W/shallow_$p.coverage.bw" --model-units both "${EVAL[@]}" > "$W/baselines/raw_$p.json"
  atacdenoise evaluate --prediction "$W/baselines/shallow_$p".gaussian_sd*.bw --model-units truth "${EVAL[@]}" \
    > "$W/baselines/gaussian_$p.json"
  atacdenoise evaluate --prediction "$W/shallow_$p.macs.signal.bw" --peaks "$W/shallow_$p.macs.narrowPeak" \
    "${EVAL[@]}" > "$W/baselines/macs3_$p.json"
done
python - "$W" "$VAL" "${FRACTIONS[@]}" <<'EOF' | tee "$W/baselines/baselines.md"
import glob, json, sys
W, val, fractions = sys.argv[1], sys.argv[2], sys.argv[3:]
cols = ("pearson", "spearman", "auroc", "auprc", "peak_f1", "mse")
print(f"Baselines on {val}, per base inside regions.bed; truth = the deep library's coverage and MACS3 peaks\n")
print("| twin | method | " + " | ".join(cols) + " |\n|" + " --- |" * (len(cols) + 2))
for p in fractions:
    sd = glob.glob(f"{W}/baselines/shallow_{p}.gaussian_sd*.bw")[0].rsplit("_sd", 1)[1][:-3]
    for name, label in (("raw", "raw coverage"), ("gaussian", f"Gaussian smoothing (sd {sd})"),
                        ("macs3", "MACS3 on shallow (pileup; peaks)")):
        m = json.load(open(f"{W}/baselines/{name}_{p}.json"))["overall"]
        cells = ["" if m.get(c) is None or (c == "mse" and name == "macs3") else f"{m[c]:.4g}" for c in cols]
        print(f"| p={p} | {label} | " + " | ".join(cells) + " |")
EOF
