"""``atacdenoise evaluate``: score a predicted track against a truth track, chromosome by chromosome.

Per-base metrics are AtacWorks' (see :mod:`.per_base` and :mod:`.metrics`):
Pearson, Spearman and MSE over every scored base and inside/outside truth
peaks, AUROC and AUPRC of the peak probability against truth-peak bases, and
precision/recall/F1 of the called peaks' bases. Beside them sits the seed's
metric, ``seed_window_mse``: the MSE over 25 bp bins of the centre 1024 bins
of 4096-bin windows that tile each chromosome (as validation tiles it).

The truth decides what is scored: its chromosomes (or ``chroms``), and inside
them the regions BED (where the truth is defined; everywhere when absent).
Every scored chromosome must be in the prediction with the same length.
The tracks are read in chunks of ``CHUNK_BASES`` and no base is kept: memory
does not grow with chromosome length (:class:`per_base.StreamingScored`:
exact Pearson/MSE sums, exact AUROC/AUPRC from counts per distinct score,
Spearman on a uniform sample of 1M bases, exact below that).
"""

from __future__ import annotations

import os

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise import metrics
from atacdenoise.evaluate.per_base import StreamingScored
from atacdenoise.io.bigwig import bigwig_chrom_sizes, read_bigwig
from atacdenoise.io.chromsizes import check_shared_chroms, select_chroms
from atacdenoise.io.narrowpeak import interval_mask, read_peaks
from atacdenoise.tracks.binning import summarise_bins
from atacdenoise.tracks.windows import WindowSpec

MODEL_UNITS_CHOICES = ("none", "truth", "both")
CHUNK_BASES = 4_000_000  # bases read per step (rounded down to whole bins): ~0.3 GB of temporaries
# Order of rows in the printed table; metrics missing from a result are skipped.
METRIC_ORDER = ("pearson", "spearman", "mse", "pearson_in_peaks", "pearson_outside_peaks", "mse_in_peaks",
                "mse_outside_peaks", "auroc", "auprc", "peak_precision", "peak_recall", "peak_f1",
                "seed_window_mse")


def evaluate(
    prediction: str | os.PathLike,
    truth: str | os.PathLike,
    truth_peaks: str | os.PathLike | None = None,
    regions: str | os.PathLike | None = None,
    peakprob: str | os.PathLike | None = None,
    peaks: str | os.PathLike | None = None,
    chroms: list[str] | None = None,
    model_units: str = "none",
    extend: int = 100,
    bin_size: int = 25,
    spec: WindowSpec = WindowSpec(),
    per_chrom: bool = True,
) -> dict:
    """Metrics of ``prediction`` (bigWig) against ``truth`` (bigWig).

    ``peakprob`` (bigWig) is the peak score for AUROC/AUPRC (the prediction
    itself when absent); ``peaks`` (narrowPeak/BED) gives the called peaks for
    precision/recall/F1 (left out when absent). ``model_units`` rescales the
    truth (``"truth"``) or both tracks (``"both"``) from their library's depth
    to the reference density (:mod:`atacdenoise.tracks.depth`), the units of
    ``atacdenoise denoise`` output, so that MSE compares like with like;
    correlations and AUCs do not change.

    Returns ``{"overall": {metric: value}, "per_chrom": {chrom: {...}},
    "scored_bases": n, "chroms": [...], "inputs": {...}}`` with ``None`` for
    an undefined metric (``per_chrom=False`` keeps only each chromosome's
    ``scored_bases``, halving the work). Raises InputError, before any work, for mismatched
    chromosomes, regions off the chromosomes, or empty tracks.
    """
    if model_units not in MODEL_UNITS_CHOICES:
        raise ValueError(f"model_units must be one of {MODEL_UNITS_CHOICES}, got {model_units!r}")
    sizes = _checked_chroms(prediction, truth, peakprob, chroms)
    region_peaks = _read_regions(regions, truth, bigwig_chrom_sizes(truth))
    truth_peak_sets = _read_optional_peaks(truth_peaks, sizes)
    called_sets = _read_optional_peaks(peaks, sizes)
    truth_scale = _model_units_scale(truth, extend) if model_units in ("truth", "both") else 1.0
    prediction_scale = _model_units_scale(prediction, extend) if model_units == "both" else 1.0

    total, total_seed, chrom_rows = StreamingScored(), metrics.Moments(), {}
    has_data = {"prediction": False, "truth": False}
    step = max(1, CHUNK_BASES // bin_size) * bin_size  # chunks hold whole bins (the seed's metric bins them)
    for chrom, length in sizes.items():
        if regions is not None and chrom not in region_peaks:
            continue
        # Per chromosome when asked for (then merged into the whole), else straight into the whole.
        scored = StreamingScored(seed=_seed(chrom)) if per_chrom else total
        seed = metrics.Moments() if per_chrom else total_seed
        n_scored = 0
        for start in range(0, length, step):
            size = min(step, length - start)
            region = (np.ones(size, bool) if regions is None
                      else interval_mask(region_peaks.get(chrom), size, start))
            if not region.any():
                continue
            end = start + size
            signal = read_bigwig(prediction, chrom, start, end) * prediction_scale
            target = read_bigwig(truth, chrom, start, end) * truth_scale
            has_data["prediction"] |= bool(np.any(signal[region] != 0))
            has_data["truth"] |= bool(np.any(target[region] != 0))
            scored.add(region, signal, target, interval_mask(truth_peak_sets.get(chrom), size, start),
                       score=None if peakprob is None else read_bigwig(peakprob, chrom, start, end),
                       called=None if peaks is None else interval_mask(called_sets.get(chrom), size, start))
            _add_seed_bins(seed, signal, target, region, bin_size)
            n_scored += int(region.sum())
        if not n_scored:
            continue
        chrom_rows[chrom] = {"scored_bases": n_scored}
        if per_chrom:
            chrom_rows[chrom].update(scored.metrics(), seed_window_mse=seed.mse())
            total.merge(scored)
            total_seed.merge(seed)
    _check_scored(chrom_rows, has_data["prediction"], has_data["truth"], prediction, truth, regions, sizes)

    overall = total.metrics()
    overall["seed_window_mse"] = total_seed.mse()
    return {
        "overall": overall,
        "per_chrom": chrom_rows,
        "scored_bases": sum(row["scored_bases"] for row in chrom_rows.values()),
        "chroms": list(chrom_rows),
        "inputs": {"prediction": os.fspath(prediction), "truth": os.fspath(truth),
                   "truth_peaks": _fspath(truth_peaks), "regions": _fspath(regions),
                   "peakprob": _fspath(peakprob), "peaks": _fspath(peaks), "model_units": model_units},
    }


# ---------------------------------------------------------------- input checks

def _fspath(path) -> str | None:
    return None if path is None else os.fspath(path)


def _checked_chroms(prediction, truth, peakprob, chroms: list[str] | None) -> dict[str, int]:
    """The chromosomes to score, with lengths; every track must agree on them."""
    truth_sizes = bigwig_chrom_sizes(truth)
    prediction_sizes = bigwig_chrom_sizes(prediction)
    _check_not_empty(truth)
    _check_not_empty(prediction)
    truth_sizes = select_chroms(truth_sizes, chroms, truth, f"the truth (it has {', '.join(truth_sizes)})")
    _check_same_chroms(prediction, prediction_sizes, truth, truth_sizes)
    if peakprob is not None:
        _check_same_chroms(peakprob, bigwig_chrom_sizes(peakprob), truth, truth_sizes)
    return truth_sizes


def _check_same_chroms(path, sizes: dict[str, int], truth, truth_sizes: dict[str, int]) -> None:
    missing = [c for c in truth_sizes if c not in sizes]
    if missing:
        raise InputError(path, f"lacks chromosome(s) {', '.join(missing)} of the truth {truth} "
                               f"(different chromosome sets)")
    for chrom, length in truth_sizes.items():
        if sizes[chrom] != length:
            raise InputError(path, f"{chrom} is {sizes[chrom]:,} bp here but {length:,} bp in the truth {truth} "
                                   f"(built on another genome?)")


def _check_not_empty(path) -> None:
    import pyBigWig

    with pyBigWig.open(os.fspath(path)) as bw:
        if not bw.header().get("nBasesCovered"):
            raise InputError(path, "bigWig is empty: it holds no data")


def _read_regions(regions, truth, truth_sizes: dict[str, int]) -> dict:
    """Regions as per-chromosome Peaks; each must lie on a truth chromosome."""
    if regions is None:
        return {}
    region_peaks = read_peaks(regions)
    if not region_peaks:
        raise InputError(regions, "regions BED is empty: nothing to score")
    for chrom, chrom_regions in region_peaks.items():
        if chrom not in truth_sizes:
            raise InputError(regions, f"region on {chrom}, which the truth {truth} lacks "
                                      f"(it has {', '.join(truth_sizes)})")
        if chrom_regions.ends.max() > truth_sizes[chrom]:
            raise InputError(regions, f"region ends at {int(chrom_regions.ends.max()):,} on {chrom}, past the "
                                      f"chromosome end ({truth_sizes[chrom]:,} bp)")
    return region_peaks


def _read_optional_peaks(path, sizes: dict[str, int]) -> dict:
    if path is None:
        return {}
    peak_sets = read_peaks(path)
    if peak_sets:  # an empty peak file is allowed: its metrics are undefined, not an error
        check_shared_chroms(path, peak_sets, sizes)
    return peak_sets


def _check_scored(chrom_rows, prediction_has_data, truth_has_data, prediction, truth, regions, sizes) -> None:
    shown = ", ".join(sizes)
    if not chrom_rows:
        raise InputError(regions, f"no region lies on the evaluated chromosomes ({shown})")
    if not truth_has_data:
        raise InputError(truth, f"truth is empty (all zero) in the scored regions of {shown}")
    if not prediction_has_data:
        raise InputError(prediction, f"prediction is empty (all zero) in the scored regions of {shown}")


# ---------------------------------------------------------------- helpers

def _model_units_scale(path, extend: int) -> float:
    """Factor that turns extended-insertion coverage into model units, measured as ``search.data`` does
    for training targets (each insertion adds ``2 * extend + 1`` to the bigWig's sum)."""
    from atacdenoise.io.bigwig import coverage_block_counts
    from atacdenoise.tracks.depth import BLOCK_BP, measure_depth

    sizes = bigwig_chrom_sizes(path)
    return measure_depth(coverage_block_counts(path, sizes, extend, BLOCK_BP), sizes, path).scale


def _seed(chrom: str) -> int:
    """A per-chromosome seed for the Spearman sample (reproducible across runs and Python processes)."""
    import zlib

    return zlib.crc32(chrom.encode())


def _add_seed_bins(seed: metrics.Moments, signal, target, region, bin_size: int) -> None:
    """The seed's metric for one chunk (whole bins from the chromosome start): scored 25 bp bins.

    The seed scores the centre 1024 bins of 4096-bin windows tiling each
    chromosome; those centres cover every bin exactly once, so its MSE is the
    MSE over bins, each bin's mean compared in float32 as the windows hold them.
    A bin is scored when all its bases are in the regions; the chromosome's
    last, partial bin when all the bases it has are.
    """
    scored_bins = summarise_bins(region.astype(np.float32), bin_size, "mean") > 1 - 1e-6
    if not scored_bins.any():
        return
    predicted = summarise_bins(signal, bin_size, "mean").astype(np.float32)[scored_bins]
    true = summarise_bins(target, bin_size, "mean").astype(np.float32)[scored_bins]
    seed.add(predicted, true)


# ---------------------------------------------------------------- output

def format_table(result: dict, digits: int = 4) -> str:
    """Metrics as a plain-text table: one row per metric, columns 'all' and each chromosome."""
    columns = {"all": result["overall"], **{c: row for c, row in result["per_chrom"].items() if len(row) > 1}}
    rows = [name for name in METRIC_ORDER if name in result["overall"]]
    header = ["metric", *columns]
    body = [[name, *(metrics.format_metric(col.get(name), digits) for col in columns.values())] for name in rows]
    body.append(["scored_bases", str(result["scored_bases"]),
                 *(str(result["per_chrom"][c]["scored_bases"]) for c in list(columns)[1:])])
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in [header, *body]]
    return "\n".join(lines)

