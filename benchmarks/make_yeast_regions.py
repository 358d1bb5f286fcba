#!/usr/bin/env python
"""Scored regions for the yeast ATAC-seq library: whole chromosomes minus pile-ups.

The S288C reference holds two copies of the ~9.1 kb rDNA repeat on chrXII
(~451-469 kb); the ~150 copies in the cell all map there, so that stretch has
coverage hundreds of times the genome median. Such a pile-up is not chromatin
accessibility: it is masked from scoring and from the truth peaks.

Detection, from the deep library's insertions (no coordinates are assumed):

1. count insertions in 1 kb bins on every chromosome of --chrom-sizes; m = the
   median over all full bins;
2. a pile-up core is a run of at least --min-run consecutive 1 kb bins each
   above --fold * m (a strong accessible site covers one or two such bins,
   the rDNA about eighteen);
3. its edges are refined at 100 bp: grow from the core while 100 bp bins are
   above --edge-fold * m / 10 (gaps of up to --max-gap cold bins bridged), then
   pad --pad bp on each side (clipped to the chromosome).

Writes --output (BED3: each chromosome of --chrom-sizes minus --exclude, whole
length, minus the masks), optionally --mask-output (the masks, BED4), and with
--peaks-in/--peaks-out copies a narrowPeak file without the peaks that overlap
a mask. Prints what it masked.

Usage: python benchmarks/make_yeast_regions.py --insertions deep.insertions.bed.gz
           --chrom-sizes chrom.sizes --output regions.bed [--mask-output mask.bed]
           [--peaks-in deep.macs.narrowPeak --peaks-out deep.peaks.narrowPeak]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from atacdenoise.io.chromsizes import read_chrom_sizes
from atacdenoise.io.reads import iter_insertions

COARSE, FINE = 1000, 100


def find_pileups(counts: dict[str, np.ndarray], sizes: dict[str, int], fold: float, min_run: int,
                 edge_fold: float, max_gap: int, pad: int):
    """``(median per kb, [(chrom, start, end, core_start, core_end, insertions)])`` from 100 bp counts."""
    coarse = {c: fine[: len(fine) // 10 * 10].reshape(-1, 10).sum(axis=1) for c, fine in counts.items()}
    full = [v[: sizes[c] // COARSE] for c, v in coarse.items()]  # full 1 kb bins only
    median = float(np.median(np.concatenate(full))) if full else 0.0
    median = max(median, 1.0)  # an almost empty library: any run of 1 kb bins above `fold` counts
    masks = []
    for chrom, per_kb in coarse.items():
        hot = per_kb > fold * median
        edges = np.flatnonzero(np.diff(np.r_[0, hot.astype(np.int8), 0]))
        for first, last in zip(edges[::2], edges[1::2]):  # runs [first, last) of hot 1 kb bins
            if last - first < min_run:
                continue
            fine = counts[chrom]
            fine_hot = fine > edge_fold * median * FINE / COARSE
            lo, hi = first * 10, last * 10          # 100 bp bins of the core
            lo = _grow(fine_hot, lo, -1, max_gap)
            hi = _grow(fine_hot, hi - 1, +1, max_gap) + 1
            start, end = max(lo * FINE - pad, 0), min(hi * FINE + pad, sizes[chrom])
            masks.append((chrom, start, end, first * COARSE, last * COARSE, int(fine[lo:hi].sum())))
    return median, masks


def _grow(hot: np.ndarray, i: int, step: int, max_gap: int) -> int:
    """From bin ``i``, the outermost hot bin reachable in direction ``step`` across gaps of <= ``max_gap`` bins.

    Starts from the core's own edge bin; a cold edge bin of the core is first shrunk inwards to the
    nearest hot one, so a pile-up starting mid-bin is not widened to the whole 1 kb bin.
    """
    while 0 <= i < len(hot) and not hot[i]:
        i -= step  # shrink inwards
    edge, gap, j = i, 0, i + step
    while 0 <= j < len(hot) and gap <= max_gap:
        if hot[j]:
            edge, gap = j, 0
        else:
            gap += 1
        j += step
    return edge


def subtract(length: int, masks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[0, length)`` minus the (possibly overlapping) intervals ``masks``."""
    kept, pos = [], 0
    for start, end in sorted(masks):
        if start > pos:
            kept.append((pos, start))
        pos = max(pos, end)
    if pos < length:
        kept.append((pos, length))
    return kept


def filter_peaks(path_in: str, path_out: str, masks) -> tuple[int, int]:
    """Copy narrowPeak lines that overlap no mask; return (kept, dropped)."""
    kept = dropped = 0
    with open(path_in) as src, open(path_out, "w") as out:
        for line in src:
            fields = line.split("\t")
            if len(fields) < 3 or line.startswith(("#", "track", "browser")):
                out.write(line)
                continue
            chrom, start, end = fields[0], int(fields[1]), int(fields[2])
            if any(c == chrom and start < e and end > s for c, s, e, *_ in masks):
                dropped += 1
            else:
                out.write(line)
                kept += 1
    return kept, dropped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--insertions", required=True, help="deep library insertions (BED6 from 'atacdenoise insertions')")
    parser.add_argument("--chrom-sizes", required=True, help="chromosomes to cover (those with data)")
    parser.add_argument("--output", required=True, help="regions BED3 to write")
    parser.add_argument("--mask-output", help="masked pile-ups, BED4")
    parser.add_argument("--peaks-in", help="narrowPeak to filter")
    parser.add_argument("--peaks-out", help="narrowPeak without the peaks overlapping a mask")
    parser.add_argument("--exclude", default="chrM,MT,M", help="chromosomes never scored (default chrM,MT,M)")
    parser.add_argument("--fold", type=float, default=50, help="1 kb bins above FOLD x median are hot (default 50)")
    parser.add_argument("--min-run", type=int, default=5, help="hot 1 kb bins in a row that make a pile-up (default 5)")
    parser.add_argument("--edge-fold", type=float, default=20,
                        help="edges: 100 bp bins above EDGE_FOLD x the median density (default 20)")
    parser.add_argument("--max-gap", type=int, default=2, help="cold 100 bp bins bridged at the edges (default 2)")
    parser.add_argument("--pad", type=int, default=1000, help="bp added on each side of a pile-up (default 1000)")
    args = parser.parse_args(argv)
    if bool(args.peaks_in) != bool(args.peaks_out):
        parser.error("--peaks-in and --peaks-out go together")

    excluded = {c for c in args.exclude.split(",") if c}
    sizes = {c: n for c, n in read_chrom_sizes(args.chrom_sizes).items() if c not in excluded}
    counts = {c: np.zeros(-(-n // FINE), np.int64) for c, n in sizes.items()}
    total = 0
    for chrom, positions in iter_insertions(args.insertions, sizes):
        counts[chrom] += np.bincount(positions // FINE, minlength=len(counts[chrom]))
        total += len(positions)
    median, masks = find_pileups(counts, sizes, args.fold, args.min_run, args.edge_fold, args.max_gap, args.pad)

    print(f"{total:,} insertions on {len(sizes)} chromosomes; median {median:g} per 1 kb bin; "
          f"pile-up = >= {args.min_run} consecutive 1 kb bins above {args.fold:g} x median", file=sys.stderr)
    for chrom, start, end, core_start, core_end, n in masks:
        print(f"masked {chrom}:{start:,}-{end:,} ({end - start:,} bp, BED {chrom}\t{start}\t{end}); "
              f"core {chrom}:{core_start:,}-{core_end:,}; {n:,} insertions = {n / max(total, 1):.1%} of the "
              f"library, {n / max(end - start - 2 * args.pad, 1) * 1000 / median:.0f} x median density",
              file=sys.stderr)
    if not masks:
        print("no pile-up found: regions are the whole chromosomes", file=sys.stderr)

    by_chrom: dict[str, list[tuple[int, int]]] = {}
    for chrom, start, end, *_ in masks:
        by_chrom.setdefault(chrom, []).append((start, end))
    with open(args.output, "w") as out:
        for chrom, length in sizes.items():
            for start, end in subtract(length, by_chrom.get(chrom, [])):
                out.write(f"{chrom}\t{start}\t{end}\n")
    scored = sum(sizes.values()) - sum(e - s for iv in by_chrom.values() for s, e in iv)
    print(f"wrote {args.output}: {scored:,} of {sum(sizes.values()):,} bp scored", file=sys.stderr)
    if args.mask_output:
        with open(args.mask_output, "w") as out:
            for chrom, start, end, *_ in masks:
                out.write(f"{chrom}\t{start}\t{end}\tpile-up\n")
    if args.peaks_in:
        kept, dropped = filter_peaks(args.peaks_in, args.peaks_out, masks)
        print(f"wrote {args.peaks_out}: {kept:,} peaks kept, {dropped:,} overlapping a mask dropped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
