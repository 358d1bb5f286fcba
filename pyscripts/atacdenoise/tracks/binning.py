"""25 bp (configurable) tracks, computed chromosome by chromosome in bounded chunks.

Two representations:
- ``peak-signal`` (the seed's): narrowPeak signal value, maximum per bin, 0 outside peaks;
- ``coverage``: insertions extended +-``extend`` bp (201 bp by default, as
  AtacWorks), summarised per bin by ``stat`` (mean, max or sum), optionally
  scaled to counts per million insertions.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from tqdm import tqdm

from atacdenoise.errors import InputError
from atacdenoise.io.narrowpeak import Peaks
from atacdenoise.tracks.bin_grid import n_bins
from atacdenoise.tracks.store import StoreWriter, open_store

REPRESENTATIONS = ("coverage", "peak-signal")
STATS = ("mean", "max", "sum")


def summarise_bins(per_base: np.ndarray, bin_size: int, stat: str) -> np.ndarray:
    """float64 ``stat`` of consecutive ``bin_size`` runs; a last partial bin uses the bases it has."""
    if stat not in STATS:
        raise ValueError(f"stat must be one of {STATS}, got {stat!r}")
    n_full = len(per_base) // bin_size
    full = per_base[: n_full * bin_size].reshape(n_full, bin_size)
    rest = per_base[n_full * bin_size :]
    parts = [full.max(axis=1) if stat == "max" else full.sum(axis=1, dtype=np.float64)]
    if len(rest):
        parts.append(np.array([rest.max() if stat == "max" else rest.sum(dtype=np.float64)]))
    out = np.concatenate(parts).astype(np.float64)
    if stat == "mean":
        out[:n_full] /= bin_size
        if len(rest):
            out[-1] /= len(rest)
    return out


def bigwig_bins(path, chrom: str, length: int, bin_size: int, stat: str = "mean",
                chunk_bases: int = 8_000_000, bins: tuple[int, int] | None = None) -> np.ndarray:
    """Per-bin ``stat`` of a per-base bigWig's ``chrom`` (a path or an open ``BigWigReader``), read in chunks
    (memory bounded by the chunk).

    ``bins=(lo, hi)``: only those bins, the same values as ``bigwig_bins(...)[lo:hi]``.
    """
    from atacdenoise.io.bigwig import bigwig_reader

    lo_bin, hi_bin = (0, n_bins(length, bin_size)) if bins is None else bins
    end = min(hi_bin * bin_size, length)
    step = max(1, chunk_bases // bin_size) * bin_size  # chunks hold whole bins
    with bigwig_reader(path) as bw:  # one handle for every chunk
        parts = [summarise_bins(bw.values(chrom, start, min(start + step, end)), bin_size, stat)
                 for start in range(lo_bin * bin_size, end, step)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def _check_stat(bin_size: int, stat: str) -> None:
    if bin_size < 1:
        raise InputError(None, f"bin size must be a positive number of bases, got {bin_size}")
    if stat not in STATS:
        raise InputError(None, f"stat must be one of {', '.join(STATS)}, got {stat!r}")


def coverage_bins(
    positions: np.ndarray,
    chrom_length: int,
    bin_size: int = 25,
    extend: int = 100,
    stat: str = "mean",
    scale: float = 1.0,
    chunk_bases: int = 8_000_000,
    bins: tuple[int, int] | None = None,
    presorted: bool = False,
) -> np.ndarray:
    """float32 per-bin summary of the coverage of ``[p - extend, p + extend]`` intervals.

    Each insertion covers the ``2 * extend + 1`` bases centred on it, clipped to
    the chromosome. Works in chunks of ``chunk_bases`` (rounded to whole bins)
    so memory does not grow with chromosome length. ``bins=(lo, hi)`` computes
    only those bins, bit for bit the same as ``coverage_bins(...)[lo:hi]``
    (every bin depends only on the insertions that reach it); ``presorted``
    skips sorting ``positions`` (the caller sorted them once).
    """
    _check_stat(bin_size, stat)
    if extend < 0:
        raise InputError(None, f"extend must be >= 0, got {extend}")
    positions = np.asarray(positions, dtype=np.int64)
    if not presorted:
        positions = np.sort(positions)
    starts = positions - extend          # first covered base
    ends = positions + extend + 1        # one past the last covered base; sorted like starts
    step = max(1, chunk_bases // bin_size) * bin_size
    lo_bin, hi_bin = (0, n_bins(chrom_length, bin_size)) if bins is None else bins
    out = np.empty(hi_bin - lo_bin, dtype=np.float32)
    range_end = min(hi_bin * bin_size, chrom_length)
    for chunk_start in range(lo_bin * bin_size, range_end, step):
        chunk_end = min(chunk_start + step, range_end)
        size = chunk_end - chunk_start
        # Only intervals that overlap this chunk: ends > chunk_start and starts < chunk_end.
        first = np.searchsorted(ends, chunk_start, side="right")
        last = np.searchsorted(starts, chunk_end, side="left")
        first_bin = chunk_start // bin_size - lo_bin
        if first >= last:  # nothing here: skip the per-base work (most of a sparse genome)
            out[first_bin : first_bin + n_bins(size, bin_size)] = 0
            continue
        rel_starts = np.clip(starts[first:last] - chunk_start, 0, size)
        rel_ends = np.clip(ends[first:last] - chunk_start, 0, size)
        if stat == "max":
            # Difference array: +1 where an interval opens, -1 one past where it closes.
            diff = np.bincount(rel_starts, minlength=size + 1) - np.bincount(rel_ends, minlength=size + 1)
            summary = summarise_bins(np.cumsum(diff[:size]), bin_size, stat)
        else:
            summary = interval_bin_sums(rel_starts, rel_ends, size, bin_size, stat)
        out[first_bin : first_bin + n_bins(size, bin_size)] = summary * scale
    return out


def interval_bin_sums(starts: np.ndarray, ends: np.ndarray, size: int, bin_size: int, stat: str) -> np.ndarray:
    """float64 per-bin sum (or mean) over ``[0, size)`` of the coverage of sorted intervals ``[starts, ends)``.

    The same numbers as :func:`summarise_bins` of the per-base coverage (integer sums are exact in float64),
    without a per-base array: the coverage integral up to ``x`` is ``sum(x - s for s < x) - sum(x - e for e < x)``,
    read at the bin edges from prefix sums. Work follows insertions and bins, not bases.
    """
    edges = np.minimum(np.arange(0, size + bin_size, bin_size, dtype=np.int64), size)
    edges = edges[: n_bins(size, bin_size) + 1]

    def integral(points: np.ndarray) -> np.ndarray:  # sum over intervals of (x - point) for points < x
        below = np.searchsorted(points, edges, side="left")
        prefix = np.concatenate([[0], np.cumsum(points, dtype=np.int64)])
        return edges * below - prefix[below]

    sums = np.diff(integral(starts) - integral(ends)).astype(np.float64)
    return sums / np.diff(edges) if stat == "mean" else sums


def peak_signal_bins(peaks: Peaks | None, chrom_length: int, bin_size: int = 25) -> np.ndarray:
    """float32 maximum narrowPeak signal per bin, 0 outside peaks."""
    out = np.zeros(n_bins(chrom_length, bin_size), dtype=np.float32)
    if peaks is None or len(peaks.starts) == 0:
        return out
    starts = np.clip(np.asarray(peaks.starts, dtype=np.int64), 0, chrom_length)
    ends = np.clip(np.asarray(peaks.ends, dtype=np.int64), 0, chrom_length)
    keep = ends > starts  # peaks entirely off the chromosome (or empty) touch no bin
    first_bin = starts[keep] // bin_size
    last_bin = (ends[keep] - 1) // bin_size
    signal = np.asarray(peaks.signal, dtype=np.float32)[keep]
    # Expand every peak to the bins it touches, then keep the largest signal per bin.
    counts = last_bin - first_bin + 1
    group_offsets = np.repeat(np.cumsum(counts) - counts, counts)
    bins = np.repeat(first_bin, counts) + np.arange(counts.sum()) - group_offsets
    np.maximum.at(out, bins, np.repeat(signal, counts))
    return out


# ---------------------------------------------------------------- whole tracks

def _coverage_from_reads(input_path, chrom_sizes, bin_size, extend, stat, fmt, read_filter, writer, progress):
    """Bin every chromosome the input has; return the number of insertions binned."""
    from atacdenoise.io.reads import iter_insertions

    total = 0
    for chrom, positions in iter_insertions(input_path, chrom_sizes, fmt=fmt, read_filter=read_filter):
        progress.set_postfix_str(chrom)
        writer.add(chrom, coverage_bins(positions, chrom_sizes[chrom], bin_size, extend, stat))
        total += len(positions)
        progress.update()
    return total


def _coverage_from_bigwig(input_path, chrom_sizes, bin_size, stat, writer, progress, chunk_bases=8_000_000):
    """Resample a per-base bigWig to bins with the same statistic, in bounded chunks."""
    from atacdenoise.io.bigwig import bigwig_chrom_sizes
    from atacdenoise.io.chromsizes import check_shared_chroms

    bw_sizes = bigwig_chrom_sizes(input_path)
    check_shared_chroms(input_path, bw_sizes, chrom_sizes)
    for chrom, length in chrom_sizes.items():
        if chrom not in bw_sizes:
            continue
        if bw_sizes[chrom] != length:
            raise InputError(input_path, f"{chrom} is {bw_sizes[chrom]:,} bp here but {length:,} bp in the chrom sizes")
        progress.set_postfix_str(chrom)
        writer.add(chrom, bigwig_bins(input_path, chrom, length, bin_size, stat, chunk_bases))
        progress.update()


def _peak_signal_from_file(input_path, chrom_sizes, bin_size, writer, progress):
    from atacdenoise.io.chromsizes import check_shared_chroms
    from atacdenoise.io.narrowpeak import read_peaks

    peaks = read_peaks(input_path)
    if peaks:
        check_shared_chroms(input_path, peaks, chrom_sizes)
    for chrom, length in chrom_sizes.items():
        progress.set_postfix_str(chrom)
        writer.add(chrom, peak_signal_bins(peaks.get(chrom), length, bin_size))
        progress.update()


def _excluded_chroms(read_filter) -> set[str]:
    from atacdenoise.io.reads import ReadFilter

    return set((read_filter or ReadFilter()).exclude_chroms)


def _fill_store(writer, input_path, chrom_sizes, representation, bin_size, extend, stat, normalize, fmt, read_filter,
                progress) -> None:
    """Every chromosome of ``chrom_sizes`` into the store being written (see :func:`bin_track`)."""
    if representation == "peak-signal":
        _peak_signal_from_file(input_path, chrom_sizes, bin_size, writer, progress)
    elif fmt == "bigwig":
        _coverage_from_bigwig(input_path, chrom_sizes, bin_size, stat, writer, progress)
    else:
        total = _coverage_from_reads(input_path, chrom_sizes, bin_size, extend, stat, fmt, read_filter, writer, progress)
        if normalize:
            if total == 0:
                raise InputError(input_path, "no insertions passed the filters: cannot normalise")
            writer.rescale(1e6 / total)
            writer.meta["params"]["total_insertions"] = total
    # Chromosomes without data are known to be empty: store zeros rather than leave gaps
    # (but not for contigs the read filter drops on purpose, such as chrM).
    skipped = _excluded_chroms(read_filter) if representation == "coverage" and fmt != "bigwig" else set()
    for chrom, length in chrom_sizes.items():
        if chrom not in writer.added and chrom not in skipped:
            writer.add(chrom, np.zeros(n_bins(length, bin_size), dtype=np.float32))
            progress.update()
    progress.update(progress.total - progress.n)  # skipped contigs (chrM ...) count as done: ends at 100 %


def bin_track(
    input_path: str | os.PathLike,
    chrom_sizes: dict[str, int],
    output_prefix: str | os.PathLike,
    representation: str = "coverage",
    bin_size: int = 25,
    extend: int = 100,
    stat: str = "mean",
    normalize: bool = False,
    fmt: str = "auto",
    read_filter=None,
    progress: bool = True,
    bedgraph: bool = False,
) -> dict[str, str]:
    """Write ``{prefix}.bw`` and the array store ``{prefix}.tracks/`` (with ``bedgraph`` also
    ``{prefix}.bedGraph.gz``); return the paths.

    ``coverage`` reads insertions from BAM/insertions/fragments (or resamples a
    bigWig); ``peak-signal`` reads a narrowPeak file. Every chromosome of
    ``chrom_sizes`` gets a track (zeros where the input has no data), except
    those the read filter excludes (chrM).
    ``normalize`` scales coverage to insertions per million: the input is read
    once and the finished per-chromosome arrays are rescaled in place.
    """
    from atacdenoise.io.atomic import atomic_set
    from atacdenoise.io.bigwig import write_bigwig
    from atacdenoise.io.reads import detect_format

    if representation not in REPRESENTATIONS:
        raise InputError(None, f"representation must be one of {', '.join(REPRESENTATIONS)}, got {representation!r}")
    _check_stat(bin_size, stat)
    if extend < 0:
        raise InputError(None, f"extend must be >= 0, got {extend}")
    if not os.path.exists(input_path):
        raise InputError(input_path, "input file does not exist")
    if representation == "coverage" and fmt == "auto":
        fmt = detect_format(input_path)
    if representation == "coverage" and fmt == "bigwig" and normalize:
        raise InputError(input_path, "--normalize needs insertions; a bigWig input has only coverage")

    store_path, bigwig_path = f"{output_prefix}.tracks", f"{output_prefix}.bw"
    params = {"extend": extend, "stat": stat, "normalize": normalize, "format": fmt} if representation == "coverage" else {}
    progress = tqdm(total=len(chrom_sizes), desc=f"binning {os.path.basename(input_path)}", unit="chrom", file=sys.stderr,
                    disable=not progress)
    outputs = {"bigwig": bigwig_path, "store": store_path}
    if bedgraph:
        from atacdenoise.io.bedgraph import bedgraph_path, write_bedgraph

        outputs["bedgraph"] = str(bedgraph_path(bigwig_path))
    with atomic_set() as temporary:  # the store and the bigWig (and bedGraph) of one run, or none of them
        with progress, StoreWriter(temporary(store_path), bin_size, representation, chrom_sizes,
                                   source=os.fspath(input_path), params=params) as writer:
            _fill_store(writer, input_path, chrom_sizes, representation, bin_size, extend, stat, normalize, fmt,
                        read_filter, progress)
        store = open_store(temporary(store_path))
        write_bigwig(temporary(bigwig_path), store.chrom_sizes, ((c, store.array(c)) for c in store.chroms),
                     bin_size)
        if bedgraph:
            write_bedgraph(temporary(outputs["bedgraph"]), store.chrom_sizes,
                           ((c, store.array(c)) for c in store.chroms), bin_size)
    return outputs
