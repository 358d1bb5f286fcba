"""Training windows drawn afresh every epoch by thinning the deep library: the seed's subsampling, repeated.

A pairs file (:mod:`.data`) freezes one noisy realisation per window, and a
network learns that realisation's noise along with the signal. A *source*
keeps the deep (clean) library itself -- its insertions, its coverage as
targets, its peak labels -- and draws a new noisy input for every window of
every epoch by keeping each clean insertion with probability

    q = depth * reference_insertions / clean_insertions

where ``reference_insertions`` is the size of the shallow library that depths
are relative to (depth 1 = the 5M library of the HSC data). That is exactly how
the shallow library came about: the HSC data's 5M insertions are a 1-in-16
subset of the 80M insertions (checked in the tests), and the seed made its
shallow twin with ``samtools view -s 0.1``. Depths are drawn log-uniformly
between the smallest and largest of ``depths``, so one model serves them all.

Scale is that of :mod:`.data` (:mod:`atacdenoise.tracks.depth`): inputs
rescaled from the thinned library's density (``q`` times the clean one's),
targets from the clean library's density.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path
from atacdenoise.search.targets import allowed_starts, channel_meta, check_depths, peak_label_bins, scored_bins
from atacdenoise.tracks.bin_grid import n_bins
from atacdenoise.tracks.binning import coverage_bins
from atacdenoise.tracks.depth import REFERENCE_DENSITY, block_counts, measure_depth
from atacdenoise.tracks.windows import WindowSpec

SOURCE_FORMAT = "atacdenoise-source/1"


@dataclass
class ChromSource:
    """One chromosome: sorted clean insertions, target bins (scaled), peak label bins, allowed window starts;
    with genome channels their ``(F, n_bins)`` renderings."""

    positions: np.ndarray
    targets: np.ndarray
    peaks: np.ndarray
    starts: np.ndarray
    genome: np.ndarray | None = None


CHROM_FIELDS = ("positions", "targets", "peaks", "starts", "genome")


class TrainingSource:
    """Draws training windows (``inputs, targets, peaks, depth, chrom, start``) with fresh noise per call."""

    def __init__(self, chroms: dict[str, ChromSource], meta: dict, path: str = "<memory>"):
        self.chroms, self.meta, self.path = chroms, meta, path
        self.spec = WindowSpec(meta["window_bins"], meta["target_bins"])
        self._counts = np.array([len(c.starts) for c in chroms.values()], np.int64)
        if self._counts.sum() == 0:
            raise InputError(path, f"no {self.spec.window_bins}-bin window fits inside the scored regions")

    def draw(self, n_windows: int, seed) -> dict:
        """``n_windows`` windows, uniform over allowed starts, each thinned at its own depth."""
        rng = np.random.default_rng(seed)
        names = list(self.chroms)
        flat = rng.integers(0, self._counts.sum(), size=n_windows)
        chrom_index = np.searchsorted(np.cumsum(self._counts), flat, side="right")
        offsets = flat - (np.cumsum(self._counts) - self._counts)[chrom_index]
        low, high = min(self.meta["depths"]), max(self.meta["depths"])
        depths = np.exp(rng.uniform(np.log(low), np.log(high), size=n_windows)).astype(np.float32)
        spec = self.spec
        from atacdenoise.tracks.channels import channel_count

        n_genome = channel_count(self.meta.get("channels", []))
        inputs = np.empty((n_windows, spec.window_bins) if not n_genome else (n_windows, 1 + n_genome, spec.window_bins),
                          np.float32)
        targets = np.empty((n_windows, spec.target_bins), np.float32)
        peaks = np.empty((n_windows, spec.target_bins), np.uint8)
        starts = np.empty(n_windows, np.int64)
        for i, (c, offset) in enumerate(zip(chrom_index, offsets)):
            chrom = self.chroms[names[c]]
            starts[i] = chrom.starts[offset]
            window = slice(int(starts[i]), int(starts[i]) + spec.window_bins)
            noisy = self._noisy_window(chrom.positions, int(starts[i]), float(depths[i]), rng)
            if n_genome:
                inputs[i, 0], inputs[i, 1:] = noisy, chrom.genome[:, window]
            else:
                inputs[i] = noisy
            target_start = starts[i] + spec.flank
            targets[i] = chrom.targets[target_start:target_start + spec.target_bins]
            peaks[i] = chrom.peaks[target_start:target_start + spec.target_bins]
        return {"inputs": inputs, "targets": targets, "peaks": peaks, "depth": depths,
                "chrom": np.array(names)[chrom_index], "start": starts}

    def _noisy_window(self, positions: np.ndarray, start_bin: int, depth: float, rng) -> np.ndarray:
        bin_size, extend = self.meta["bin_size"], self.meta["extend"]
        first_base, length = start_bin * bin_size, self.spec.window_bins * bin_size
        lo, hi = np.searchsorted(positions, [first_base - extend, first_base + length + extend])
        keep_probability = depth * self.meta["reference_insertions"] / self.meta["clean_insertions"]
        nearby = positions[lo:hi]
        kept = nearby[rng.random(len(nearby)) < keep_probability] - first_base
        scale = self.meta["reference_density"] / (keep_probability * self.meta["clean_depth"]["insertions"]
                                                  / self.meta["clean_depth"]["sequence_bp"])
        return coverage_bins(kept, length, bin_size=bin_size, extend=extend, stat="mean", scale=scale)

    def fingerprint_arrays(self):
        for chrom in self.chroms.values():
            yield from (chrom.positions, chrom.targets, chrom.peaks, chrom.starts)
            if chrom.genome is not None:
                yield chrom.genome


def build_source(clean_insertions, clean_peaks, chrom_sizes: dict[str, int], chroms: list[str],
                 reference_insertions: int, depths=(0.1, 1.0), regions=None, spec: WindowSpec = WindowSpec(),
                 bin_size: int = 25, extend: int = 100, windows_per_epoch: int = 6000, genome=None) -> TrainingSource:
    """A source over ``chroms`` from ``(chrom, positions)`` pairs of the clean library (all chromosomes).

    Targets are the clean insertions' coverage (mean per bin, rescaled from the
    clean library's density). With ``regions`` (where the truth is defined), only windows
    whose target lies wholly inside them are drawn. ``genome``
    (``tracks.channels.GenomeChannels``) adds its channels and blacklist.
    """
    from atacdenoise.io.narrowpeak import read_peaks

    depths = check_depths(depths)
    if reference_insertions <= 0:
        raise InputError(None, "the reference (shallow) library has no insertions")
    peaks = read_peaks(clean_peaks)
    per_chrom, clean_total, clean_blocks = {}, 0, {}
    for chrom, positions in clean_insertions:
        clean_total += len(positions)
        clean_blocks[chrom] = block_counts(positions, chrom_sizes[chrom])
        if chrom in chroms:
            length = chrom_sizes[chrom]
            per_chrom[chrom] = ChromSource(
                positions=np.sort(np.asarray(positions, np.int64)),
                targets=coverage_bins(positions, length, bin_size=bin_size, extend=extend, stat="mean"),
                peaks=peak_label_bins(peaks.get(chrom), length, bin_size).astype(np.uint8),
                starts=allowed_starts(n_bins(length, bin_size), spec,
                                      scored_bins(regions, chrom, length, bin_size, genome)),
                genome=genome.render(chrom) if genome is not None and genome.n_channels else None)
    missing = [c for c in chroms if c not in per_chrom]
    if missing:
        raise InputError(None, f"the clean library has no insertions on {', '.join(missing)}")
    if reference_insertions > clean_total:
        raise InputError(None, f"the shallow library ({reference_insertions:,} insertions) is larger than the "
                               f"clean one ({clean_total:,}): nothing to thin")
    clean_depth = measure_depth(clean_blocks.items(), chrom_sizes)
    for chrom in per_chrom.values():
        chrom.targets *= np.float32(clean_depth.scale)
    meta = {"format": SOURCE_FORMAT, "bin_size": bin_size, "window_bins": spec.window_bins,
            "target_bins": spec.target_bins, "representation": "coverage", "extend": extend,
            "chroms": list(chroms), "depths": list(depths), "reference_insertions": int(reference_insertions),
            "clean_insertions": int(clean_total), "windows_per_epoch": int(windows_per_epoch),
            "normalisation": "density", "reference_density": REFERENCE_DENSITY, "clean_depth": clean_depth.to_dict(),
            **channel_meta(genome)}
    return TrainingSource(per_chrom, meta)


# ---------------------------------------------------------------- files

def save_source(path: str | os.PathLike, source: TrainingSource) -> None:
    arrays = {f"{field}/{chrom}": getattr(c, field) for chrom, c in source.chroms.items()
              for field in CHROM_FIELDS if getattr(c, field) is not None}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays, meta=np.array(json.dumps(source.meta)))


def is_source(path: str | os.PathLike) -> bool:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return json.loads(str(npz["meta"])).get("format") == SOURCE_FORMAT
    except Exception:  # not ours: load_pairs gives the precise error
        return False


def load_source(path: str | os.PathLike) -> TrainingSource:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            chroms = {chrom: ChromSource(*(npz[f"{field}/{chrom}"] if f"{field}/{chrom}" in npz else None
                                           for field in CHROM_FIELDS))
                      for chrom in meta["chroms"]}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
        raise InputError(path, f"not a training source from 'atacdenoise prepare --resample' "
                               f"({type(err).__name__}: {err})") from None
    if meta.get("format") != SOURCE_FORMAT:
        raise InputError(path, f"expected format {SOURCE_FORMAT!r}, found {meta.get('format')!r}")
    if meta.get("normalisation") != "density":
        raise InputError(path, "made before density normalisation (per million insertions of the file); "
                               "run 'atacdenoise prepare' again")
    for chrom, c in chroms.items():
        if not np.isfinite(c.targets).all():
            raise InputError(path, f"targets of {chrom} hold NaN or infinite values")
    return TrainingSource(chroms, meta, str(path))
