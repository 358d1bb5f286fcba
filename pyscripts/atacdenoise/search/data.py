"""Training pairs for the search: noisy windows at several depths and their clean targets.

One ``.npz`` per split holds ``inputs (n, window_bins)`` (``(n, 1 + channels,
window_bins)`` with genome channels: see ``tracks.channels``), ``targets (n,
target_bins)``, ``peaks (n, target_bins)`` in {0, 1}, ``depth (n,)``,
``chrom (n,)``, ``start (n,)`` and a JSON ``meta`` record. Training windows are
sampled uniformly (as in the seed), validation windows tile their chromosomes.

Scale (:mod:`atacdenoise.tracks.depth`). Inputs are coverage rescaled from the
*full* noisy library's density to the reference density, multiplied by ``1/p``
for a library thinned to probability ``p``; targets are clean coverage rescaled
from the clean library's density. A window thinned to 10 % therefore has the
same expected values as the full library, and one model serves every depth: it
only has to learn to remove noise, not to guess the depth. Densities are per
base of the sequence each library covers, so a slice trains like a genome.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path
from atacdenoise.io.bigwig import bigwig_reader
from atacdenoise.search.targets import (channel_meta, check_depths, peak_label_bins, scored_bins,
                                         windows_in_regions)
from atacdenoise.tracks.bin_grid import n_bins
from atacdenoise.tracks.binning import bigwig_bins
from atacdenoise.tracks.depth import BLOCK_BP, REFERENCE_DENSITY, block_counts, measure_depth
from atacdenoise.tracks.windows import WindowSpec

PAIRS_FORMAT = "atacdenoise-pairs/1"
DEFAULT_DEPTHS = (0.1, 0.2, 1.0)
ARRAYS = ("inputs", "targets", "peaks", "depth", "chrom", "start")
# Keys two files must agree on to be used together (train with val, or a model with data).
GEOMETRY_KEYS = ("bin_size", "window_bins", "target_bins", "representation", "channels", "normalisation")


# ---------------------------------------------------------------- building pairs

def make_pairs(
    noisy_insertions: str | os.PathLike,
    clean_bigwig: str | os.PathLike,
    clean_peaks: str | os.PathLike,
    chrom_sizes: dict[str, int],
    chroms: list[str],
    depths=DEFAULT_DEPTHS,
    n_windows: int | None = None,
    spec: WindowSpec = WindowSpec(),
    bin_size: int = 25,
    seed: int = 0,
    extend: int = 100,
    regions=None,
    genome=None,
    clean_depth=None,
) -> dict:
    """Window pairs from ``chroms``; ``n_windows=None`` tiles them (validation).

    ``clean_bigwig`` is a path or an open ``io.bigwig.BigWigReader`` (``prepare``
    opens the clean track once for both splits); ``clean_depth``, the clean
    library's ``tracks.depth.LibraryDepth``, is measured from it when not given.

    With ``genome`` (a ``tracks.channels.GenomeChannels``) every input window
    also carries its genome channels, and no kept window's target touches its blacklist.

    Sampled windows take the depths in turn; tiled windows appear once per depth.
    With ``regions`` (where the clean truth is defined, e.g. AtacWorks' labelled
    regions), windows whose target bins leave them are dropped: zeros there mean
    "not measured", not "closed chromatin".
    Returns the arrays of :data:`ARRAYS` plus ``"meta"`` (a plain dict).
    Works one chromosome at a time.
    """
    from atacdenoise.io.narrowpeak import read_peaks
    from atacdenoise.io.reads import iter_insertions

    depths = check_depths(depths)
    unknown = [c for c in chroms if c not in chrom_sizes]
    if unknown or not chroms:
        raise InputError(None, f"chromosomes {unknown or chroms} are not in the chrom sizes ({', '.join(chrom_sizes)})")
    rng = np.random.default_rng(seed)
    plan = _window_plan({c: n_bins(chrom_sizes[c], bin_size) for c in chroms}, n_windows, spec, len(depths), rng)
    if regions is not None or (genome is not None and genome.has_blacklist):
        plan = _keep_scored_windows(plan, regions, chrom_sizes, spec, bin_size, genome)
    peaks = read_peaks(clean_peaks)

    pieces, noisy_blocks, seen = [], {}, set()
    with bigwig_reader(clean_bigwig) as clean:  # one handle for every chromosome's targets and the library size
        for chrom, positions in iter_insertions(noisy_insertions, chrom_sizes):
            noisy_blocks[chrom] = block_counts(positions, chrom_sizes[chrom])  # the whole library, not just these
            if chrom in plan:
                seen.add(chrom)
                pieces.append(_chrom_pairs(chrom, positions, plan[chrom], chrom_sizes[chrom], depths, clean,
                                           peaks.get(chrom), spec, bin_size, extend, seed, chroms.index(chrom), genome))
        for chrom in plan.keys() - seen:  # no insertions at all: inputs are zero, targets still count
            pieces.append(_chrom_pairs(chrom, np.zeros(0, np.int64), plan[chrom], chrom_sizes[chrom], depths, clean,
                                       peaks.get(chrom), spec, bin_size, extend, seed, chroms.index(chrom), genome))
        if not any(b.sum() for b in noisy_blocks.values()):
            raise InputError(noisy_insertions, "no insertions on the chromosomes of the chrom sizes")
        if clean_depth is None:
            clean_depth = clean_library_depth(clean, chrom_sizes, extend)

    noisy_depth = measure_depth(noisy_blocks.items(), chrom_sizes, noisy_insertions)
    pairs = {key: np.concatenate([p[key] for p in pieces]) for key in (*ARRAYS, "order")}
    order = np.argsort(pairs.pop("order"), kind="stable")  # back to sampling order: any prefix is a random subset
    pairs = {key: value[order] for key, value in pairs.items()}
    scale = (noisy_depth.scale / pairs["depth"]).astype(np.float32)
    if pairs["inputs"].ndim == 2:
        pairs["inputs"] *= scale[:, None]
    else:
        pairs["inputs"][:, 0] *= scale[:, None]  # genome channels keep their own units
    pairs["targets"] *= np.float32(clean_depth.scale)
    pairs["meta"] = {
        "format": PAIRS_FORMAT, "bin_size": bin_size, "window_bins": spec.window_bins,
        "target_bins": spec.target_bins, "representation": "coverage", "extend": extend,
        "chroms": list(chroms), "depths": list(depths), "tiled": n_windows is None, "seed": seed,
        "regions_only": regions is not None,
        **channel_meta(genome),
        "normalisation": "density", "reference_density": REFERENCE_DENSITY,
        "noisy_insertions": int(sum(b.sum() for b in noisy_blocks.values())),
        "noisy_depth": noisy_depth.to_dict(), "clean_depth": clean_depth.to_dict(),
        "sources": {"noisy": os.fspath(noisy_insertions), "clean": os.fspath(clean_bigwig),
                    "peaks": os.fspath(clean_peaks)},
    }
    return pairs


def clean_library_depth(clean, chrom_sizes: dict[str, int], extend: int = 100):
    """``LibraryDepth`` of the clean library from its coverage bigWig (an open ``BigWigReader``)."""
    return measure_depth(clean.block_counts(chrom_sizes, extend, BLOCK_BP), chrom_sizes, os.fspath(clean))


def _window_plan(n_bins_by_chrom: dict[str, int], n_windows: int | None, spec: WindowSpec, n_depths: int,
                 rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Per chromosome: window ``starts``, ``depth_index`` and global ``order`` of each window."""
    from atacdenoise.tracks.windows import sample_starts, tile_starts

    rows: dict[str, list[tuple[int, int, int]]] = {c: [] for c in n_bins_by_chrom}
    if n_windows is None:
        order = 0
        for depth_index in range(n_depths):
            for chrom, nb in n_bins_by_chrom.items():
                for start in tile_starts(nb, spec):
                    rows[chrom].append((int(start), depth_index, order))
                    order += 1
    else:
        if n_windows < 1:
            raise InputError(None, f"the number of windows must be positive, got {n_windows}")
        for i, (chrom, start) in enumerate(sample_starts(n_bins_by_chrom, n_windows, spec, rng)):
            rows[chrom].append((int(start), i % n_depths, i))
    plan = {}
    for chrom, chrom_rows in rows.items():
        if chrom_rows:
            starts, depth_index, order = np.array(chrom_rows, dtype=np.int64).T
            plan[chrom] = {"starts": starts, "depth_index": depth_index, "order": order}
    return plan


def _keep_scored_windows(plan: dict, regions, chrom_sizes: dict[str, int], spec: WindowSpec, bin_size: int,
                         genome=None) -> dict:
    kept = {}
    for chrom, rows in plan.items():
        scored = scored_bins(regions, chrom, chrom_sizes[chrom], bin_size, genome)
        inside = windows_in_regions(rows["starts"], spec, scored)
        if inside.any():
            kept[chrom] = {key: value[inside] for key, value in rows.items()}
    if not kept:
        raise InputError(None, f"no window's {spec.target_bins}-bin target lies inside the scored regions")
    return kept


def _chrom_pairs(chrom, positions, plan, length, depths, clean_bigwig, chrom_peaks, spec, bin_size, extend, seed,
                 chrom_no, genome=None) -> dict[str, np.ndarray]:
    """Raw (unscaled) windows of one chromosome."""
    from atacdenoise.tracks.binning import coverage_bins
    from atacdenoise.tracks.subsample import thin_positions
    from atacdenoise.tracks.windows import extract

    starts, depth_index = plan["starts"], plan["depth_index"]
    inputs = np.zeros((len(starts), spec.window_bins), np.float32)
    for d, depth in enumerate(depths):
        chosen = depth_index == d
        if not chosen.any():
            continue
        rng = np.random.default_rng([seed, chrom_no, d])  # each (chromosome, depth) its own reproducible stream
        kept = positions if depth == 1.0 else thin_positions(positions, depth, rng)
        bins = coverage_bins(kept, length, bin_size=bin_size, extend=extend, stat="mean")
        inputs[chosen] = extract(bins, starts[chosen], spec.window_bins)
    if genome is not None and genome.n_channels:
        from atacdenoise.tracks.windows import extract_channels

        inputs = np.concatenate([inputs[:, None], extract_channels(genome.render(chrom), starts, spec.window_bins)],
                                axis=1)
    target_starts = starts + spec.flank
    clean = bigwig_bins(clean_bigwig, chrom, length, bin_size)  # mean per bin
    labels = peak_label_bins(chrom_peaks, length, bin_size)
    return {
        "inputs": inputs,
        "targets": extract(clean, target_starts, spec.target_bins),
        "peaks": extract(labels, target_starts, spec.target_bins).astype(np.uint8),
        "depth": np.asarray(depths, np.float32)[depth_index],
        "chrom": np.full(len(starts), chrom),
        "start": starts,
        "order": plan["order"],
    }


# ---------------------------------------------------------------- .npz files

def save_pairs(path: str | os.PathLike, pairs: dict) -> None:
    """Write ``pairs`` (as returned by :func:`make_pairs`) atomically."""
    arrays = {key: pairs[key] for key in ARRAYS}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays, meta=np.array(json.dumps(pairs["meta"])))


def load_pairs(path: str | os.PathLike) -> dict:
    """Read and validate a pairs file: shapes agree with its metadata, no NaN."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "pairs file does not exist (make it with 'atacdenoise prepare')")
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            pairs = {key: npz[key] for key in ARRAYS}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
        raise InputError(path, f"not a pairs file from 'atacdenoise prepare' ({type(err).__name__}: {err})") from None
    if not isinstance(meta, dict) or meta.get("format") != PAIRS_FORMAT:
        raise InputError(path, f"expected format {PAIRS_FORMAT!r}, found {meta.get('format') if isinstance(meta, dict) else meta!r}")
    _check_shapes(path, pairs, meta)
    for key in ("inputs", "targets", "peaks"):
        if not np.isfinite(pairs[key]).all():
            raise InputError(path, f"{key} hold NaN or infinite values")
    pairs["meta"] = meta
    pairs["path"] = str(path)
    return pairs


def _check_shapes(path, pairs: dict, meta: dict) -> None:
    n = len(pairs["inputs"])
    from atacdenoise.tracks.channels import channel_count

    channels = channel_count(meta.get("channels", []))
    expected = {"inputs": (n, meta["window_bins"]) if not channels else (n, 1 + channels, meta["window_bins"]), "targets": (n, meta["target_bins"]),
                "peaks": (n, meta["target_bins"]), "depth": (n,), "chrom": (n,), "start": (n,)}
    for key, shape in expected.items():
        if pairs[key].shape != tuple(shape):
            raise InputError(path, f"{key} has shape {pairs[key].shape}, expected {tuple(shape)}")
    if n == 0:
        raise InputError(path, "holds no windows")


def check_compatible(train: dict, val: dict) -> None:
    """Training and validation files must share geometry and no chromosome (InputError naming both)."""
    names = f"{train['path']} and {val['path']}"
    for key in GEOMETRY_KEYS:
        if train["meta"].get(key) != val["meta"].get(key):
            raise InputError(train["path"], f"{key} differs between {names}: "
                                            f"{train['meta'].get(key)!r} vs {val['meta'].get(key)!r}")
    shared = sorted(set(train["meta"]["chroms"]) & set(val["meta"]["chroms"]))
    if shared:
        raise InputError(train["path"], f"{names} share chromosomes {', '.join(shared)}: "
                                        "validation must be held out")


def prepare(noisy_insertions, clean_bigwig, clean_peaks, chrom_sizes: dict[str, int], train_chroms: list[str],
            val_chroms: list[str], out_dir, depths=DEFAULT_DEPTHS, n_train: int = 10_000,
            spec: WindowSpec = WindowSpec(), bin_size: int = 25, seed: int = 0, regions=None,
            resample: bool = False, clean_insertions=None, genome=None) -> dict[str, str]:
    """Write ``train.npz`` and ``val.npz`` (tiled windows) in ``out_dir``; return both paths.

    ``train.npz`` holds sampled pairs, or with ``resample=True`` a resampling
    source (:mod:`.resample`) built from ``clean_insertions`` (any reads file),
    or, when that is None, from the insertions recovered from ``clean_bigwig``.
    ``genome`` (``tracks.channels.GenomeChannels``) adds genome channels and the blacklist.
    """
    shared = sorted(set(train_chroms) & set(val_chroms))
    if shared:
        raise InputError(None, f"training and validation chromosomes overlap: {', '.join(shared)}")
    out_dir = Path(out_dir)
    outputs = {"train": out_dir / "train.npz", "val": out_dir / "val.npz"}
    with bigwig_reader(clean_bigwig) as clean:  # opened once: sizes, library size, targets, deconvolution
        clean_depth = clean_library_depth(clean, chrom_sizes)
        val = make_pairs(noisy_insertions, clean, clean_peaks, chrom_sizes, val_chroms, depths, None, spec,
                         bin_size, seed, regions=regions, genome=genome, clean_depth=clean_depth)
        if resample:
            from atacdenoise.search.resample import save_source

            # Depth 1 is the shallow library's size, which building val.npz has already counted.
            train = _resampling_source(val["meta"]["noisy_insertions"], clean, clean_peaks, chrom_sizes,
                                       train_chroms, depths, n_train, spec, bin_size, regions, clean_insertions, genome)
            save_train = save_source
        else:
            train = make_pairs(noisy_insertions, clean, clean_peaks, chrom_sizes, train_chroms, depths, n_train,
                               spec, bin_size, seed, regions=regions, genome=genome, clean_depth=clean_depth)
            save_train = save_pairs
    save_train(outputs["train"], train)  # written only when both are built: never half a data set
    save_pairs(outputs["val"], val)
    return {name: str(path) for name, path in outputs.items()}


def _resampling_source(reference, clean_bigwig, clean_peaks, chrom_sizes, chroms, depths, n_train, spec,
                       bin_size, regions, clean_insertions, genome=None):
    from atacdenoise.io.reads import iter_insertions
    from atacdenoise.search.resample import build_source
    from atacdenoise.tracks.deconvolve import insertions_from_coverage

    clean = (iter_insertions(clean_insertions, chrom_sizes) if clean_insertions is not None
             else insertions_from_coverage(clean_bigwig, chrom_sizes, regions))
    return build_source(clean, clean_peaks, chrom_sizes, chroms, reference, depths, regions, spec, bin_size,
                        windows_per_epoch=n_train, genome=genome)
