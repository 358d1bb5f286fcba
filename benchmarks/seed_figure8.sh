#!/usr/bin/env bash
# The seed's Figure 8 in its own representation: NASH grows the best Hilbert-2D draw of the Figure 4
# random search (bench_input_layouts.py --save-best), on the peak-signal pairs of seed_peak_signal.py,
# with the seed's settings per iteration: 8 children, one SGDR cycle of 17 epochs with lr 0.05 -> 0,
# MSE alone, linear output, no gradient clipping, the parent competing (it may win).
#
# Budget, said plainly: the seed ran 60 iterations on ~9,300 windows. On this project's 2-core CPU one
# child at 9,000 windows x 17 epochs costs ~5 min, an iteration of 8 children ~40 min, 60 iterations
# ~40 h; so this script trains every child on the first $WINDOWS (default 1,000) training windows and
# runs $ITERATIONS (default 5) iterations. Validation is the whole tiled validation chromosome. On a GPU:
# WINDOWS=9000 ITERATIONS=60 DEVICE=cuda. Searches resume (--resume) when rerun with more ITERATIONS.
#
# Usage: bash benchmarks/seed_figure8.sh hsc|yeast [OUT]
#        (default OUT: benchmarks/searches/seed_hilbert2d_peak_signal_<data>)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${1:?hsc or yeast}
OUT=${2:-$ROOT/benchmarks/searches/seed_hilbert2d_peak_signal_$DATA}
WINDOWS=${WINDOWS:-1000}
ITERATIONS=${ITERATIONS:-5}
DEVICE=${DEVICE:-cpu}
PAIRS=$ROOT/benchmarks/out/seed_peak_signal/${DATA}_9000_0
BEST=$ROOT/benchmarks/out/figure4_${DATA}_best

# 1. The Figure 4 random search (10 draws x 3 epochs x 9,000 windows per layout) and its best Hilbert draw.
if [ ! -f "$BEST/best_model.pt" ]; then
  python "$ROOT/benchmarks/bench_input_layouts.py" --data "$DATA" --save-best "$BEST" --device "$DEVICE"
fi

# 2. NASH from there.
RESUME=()
[ -f "$OUT/checkpoint/checkpoint.pt" ] && RESUME=(--resume)
atacdenoise search --train "$PAIRS/train.npz" --val "$PAIRS/val.npz" --space hilbert2d \
  --initial-model "$BEST" --loss mse --peak-weight 0 --grad-clip 0 --no-mirror \
  --iterations "$ITERATIONS" --children 8 --epochs 17 --lr-max 0.05 --lr-min 0 \
  --max-train-windows "$WINDOWS" --device "$DEVICE" --seed 0 --quiet --outdir "$OUT" "${RESUME[@]}"
