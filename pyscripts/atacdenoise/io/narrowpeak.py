"""narrowPeak / BED peak files.

Why not bioframe (checked with 0.8.0): it would replace little and cost much.
Reading: ``bioframe.read_table`` is pandas' CSV reader, which does not give the
one-line "file: line N: problem" errors every input here promises; the parsing
below is a few lines either way. The interval work (per-base masks, peaks called
from a per-bin probability in streamed chunks, ``denoise/peaks_from_prob.py``)
is numpy on arrays that bioframe would first turn into DataFrames:
``bioframe.merge`` finds the same merged runs of 3.2 M bins as
``called_runs`` in 262 ms against 26 ms, and the summit and maximum per run
would still be ours. The dependency: pandas, matplotlib, requests and pyyaml
with it, 266 MB installed into an empty folder, 3.6 s to import (both measured
under load on a shared 2-core machine), into the inference container that has
none of them today.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path
from atacdenoise.io.reads import READ_ERRORS, is_header, open_text


@dataclass
class Peaks:
    """Peaks on one chromosome, sorted by start (0-based half-open)."""

    chrom: str
    starts: np.ndarray   # int64
    ends: np.ndarray     # int64
    signal: np.ndarray   # float32: narrowPeak column 7, or BED score / 1 when absent
    summits: np.ndarray | None = None  # int64 offsets from start, narrowPeak column 10


def interval_mask(peaks: Peaks | None, length: int, offset: int = 0) -> np.ndarray:
    """Boolean per-base mask of the union of intervals over ``[offset, offset + length)`` (clipped to it)."""
    diff = np.zeros(length + 1, np.int32)
    if peaks is not None and len(peaks.starts):
        starts = np.clip(np.asarray(peaks.starts, np.int64) - offset, 0, length)
        ends = np.clip(np.asarray(peaks.ends, np.int64) - offset, 0, length)
        np.add.at(diff, starts, 1)
        np.add.at(diff, ends, -1)
    return np.cumsum(diff[:-1]) > 0


def peak_union(peaks: Peaks | None, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The union of the intervals, clipped to ``[0, length)``, as sorted disjoint (starts, ends).

    Touching intervals merge. Works on the intervals, never on a per-base array, so its memory follows
    the number of peaks, not the chromosome's length.
    """
    if peaks is None or not len(peaks.starts):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.clip(np.asarray(peaks.starts, np.int64), 0, length)
    ends = np.clip(np.asarray(peaks.ends, np.int64), 0, length)
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    keep = ends > starts
    return sorted_union(starts[keep], ends[keep])


def sorted_union(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals sorted by start, as disjoint (starts, ends); touching intervals merge."""
    if not len(starts):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    reach = np.maximum.accumulate(ends)
    new = np.concatenate([[True], starts[1:] > reach[:-1]])  # an interval that opens a new union
    return starts[new], np.maximum.reduceat(ends, np.flatnonzero(new))


def covered_bases(peaks: Peaks | None, length: int) -> int:
    """Bases of ``[0, length)`` inside at least one interval (``interval_mask(...).sum()`` without the mask)."""
    starts, ends = peak_union(peaks, length)
    return int((ends - starts).sum())


def bins_inside(peaks: Peaks | None, length: int, bin_size: int, rule: str) -> np.ndarray:
    """Per bin of ``[0, length)``: True when the union of the intervals holds the bin's centre base
    (``rule="centre"``) or all of its bases (``rule="whole"``; a last partial bin never is).

    The same as summarising ``interval_mask(peaks, length)`` per bin, in memory per bin, not per base.
    """
    n = -(-length // bin_size)
    first = np.arange(n, dtype=np.int64) * bin_size
    starts, ends = peak_union(peaks, length)
    if not len(starts):
        return np.zeros(n, bool)
    probe = first + bin_size // 2 if rule == "centre" else first
    last = probe + 1 if rule == "centre" else first + bin_size  # exclusive end of the bases that must be inside
    owner = np.searchsorted(starts, probe, side="right") - 1  # the union interval starting at or before the probe
    safe = np.maximum(owner, 0)
    return (owner >= 0) & (last <= ends[safe]) & (last <= length)


def read_blacklist(path: str | os.PathLike, chrom_sizes: dict[str, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A blacklist BED (ENCODE's: regions whose signal is an artefact) as each chromosome's union of intervals."""
    return {chrom: peak_union(peaks, chrom_sizes[chrom]) for chrom, peaks in read_peaks(path).items()
            if chrom in chrom_sizes}


def overlaps_blacklist(chrom: str, starts: np.ndarray, ends: np.ndarray,
                       blacklist: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """True for each interval that shares at least one base with ``chrom``'s blacklisted union."""
    bad_starts, bad_ends = blacklist.get(chrom, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    if not len(bad_starts):
        return np.zeros(len(starts), bool)
    last = np.searchsorted(bad_starts, ends, side="left") - 1  # the last union interval starting before the end
    return (last >= 0) & (bad_ends[np.maximum(last, 0)] > starts)


def without_blacklisted(peaks: Peaks, blacklist: dict[str, tuple[np.ndarray, np.ndarray]]) -> Peaks:
    """``peaks`` less those that overlap the blacklist (nf-core/atacseq drops them the same way)."""
    keep = ~overlaps_blacklist(peaks.chrom, peaks.starts, peaks.ends, blacklist)
    return Peaks(peaks.chrom, peaks.starts[keep], peaks.ends[keep], peaks.signal[keep],
                 None if peaks.summits is None else peaks.summits[keep])


def read_peaks(path: str | os.PathLike) -> dict[str, Peaks]:
    """Read narrowPeak (10 columns) or plain BED (>= 3 columns) into per-chrom Peaks.

    Signal is column 7 (narrowPeak signalValue) when present, else the BED
    score (column 5, '.' read as 1), else 1. Summits come from column 10 when
    every peak of a chromosome has one (-1 means "none" in narrowPeak).
    Malformed lines raise InputError naming the file and line number.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "peak file does not exist")
    rows: dict[str, list[tuple[int, int, float, int]]] = {}
    with open_text(path) as fh:
        try:
            for line_no, line in enumerate(fh, start=1):
                if is_header(line):
                    continue
                chrom, *row = _parse_line(path, line_no, line)
                rows.setdefault(chrom, []).append(tuple(row))
        except READ_ERRORS as err:
            raise InputError(path, f"cannot read ({err})") from None
    return {chrom: _to_peaks(chrom, chrom_rows) for chrom, chrom_rows in rows.items()}


def _parse_line(path: Path, line_no: int, line: str) -> tuple[str, int, int, float, int]:
    """``(chrom, start, end, signal, summit)``; summit -1 when absent."""
    fields = line.split("\t") if "\t" in line else line.split()
    fields = [f.strip() for f in fields]
    if len(fields) < 3:
        raise InputError(path, f"line {line_no}: expected at least 3 columns (chrom, start, end), got {line.rstrip()!r}")
    try:
        start, end = int(fields[1]), int(fields[2])
        if len(fields) >= 7:
            signal = float(fields[6])
        elif len(fields) >= 5 and fields[4] != ".":
            signal = float(fields[4])
        else:
            signal = 1.0
        summit = int(fields[9]) if len(fields) >= 10 else -1
    except ValueError:
        raise InputError(path, f"line {line_no}: non-numeric coordinate, score or summit in {line.rstrip()!r}") from None
    if start < 0 or end <= start:
        raise InputError(path, f"line {line_no}: need 0 <= start < end, got start {start}, end {end}")
    if summit >= end - start:
        raise InputError(path, f"line {line_no}: summit offset {summit} lies outside the peak")
    return fields[0], start, end, signal, summit


def _to_peaks(chrom: str, rows: list[tuple[int, int, float, int]]) -> Peaks:
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(table[:, 0], kind="stable")
    table = table[order]
    summits = table[:, 3].astype(np.int64)
    return Peaks(
        chrom=chrom,
        starts=table[:, 0].astype(np.int64),
        ends=table[:, 1].astype(np.int64),
        signal=table[:, 2].astype(np.float32),
        summits=summits if np.all(summits >= 0) else None,
    )


def write_narrowpeak(path: str | os.PathLike, peaks: list[Peaks], name_prefix: str = "peak") -> None:
    """Write narrowPeak atomically.

    Name is ``{name_prefix}_{i}`` (numbered across the file), score is
    ``min(int(signal * 10), 1000)``, strand ``.``; p/q-values are -1 (unknown)
    and the summit is -1 when the peaks carry none.
    """
    index = 0
    with atomic_path(path) as tmp, open(tmp, "w") as out:
        for chrom_peaks in peaks:
            summits = chrom_peaks.summits if chrom_peaks.summits is not None else np.full(len(chrom_peaks.starts), -1)
            # float32 scalars print as their shortest exact form, so signals read back unchanged
            signals = np.asarray(chrom_peaks.signal, dtype=np.float32)
            for start, end, signal, summit in zip(chrom_peaks.starts.tolist(), chrom_peaks.ends.tolist(),
                                                  signals, np.asarray(summits).tolist()):
                score = max(min(int(signal * 10), 1000), 0)
                out.write(f"{chrom_peaks.chrom}\t{start}\t{end}\t{name_prefix}_{index}\t{score}\t.\t"
                          f"{signal!s}\t-1\t-1\t{summit}\n")
                index += 1
