"""What the report reads, checked before any work: samples (one, or a samplesheet's), provenance, QC, genes,
baselines, the search folder and the model card.

Every problem is an :class:`InputError` naming the file, raised before the first
chromosome is binned, so a bad sheet row fails in seconds, not after the first sample.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.io.bigwig import bigwig_chrom_sizes
from atacdenoise.io.chromsizes import check_shared_chroms, select_chroms
from atacdenoise.io.narrowpeak import Peaks, read_peaks

SAMPLESHEET_COLUMNS = ("sample", "denoised", "peakprob", "peaks", "noisy")
SAMPLESHEET_OPTIONAL = ("truth", "truth_peaks", "regions", "provenance", "qc", "shallow_peaks")


@dataclass
class Sample:
    """One denoised sample as ``denoise`` leaves it, with what to compare it against."""

    name: str
    denoised: str
    peakprob: str
    peaks: str
    noisy: str
    truth: str | None = None
    truth_peaks: str | None = None
    regions: str | None = None
    provenance: str | dict | None = None   # a dict, a JSON file, or None: PREFIX.provenance.json when present
    qc: str | None = None                  # an `atacdenoise qc` JSON (P.qc.json)
    shallow_peaks: str | None = None       # MACS3's peaks on the shallow input: the baseline a lab would use


@dataclass
class Settings:
    """The options every sample of a page shares."""

    chroms: list[str] | None = None
    n_strong: int = 4
    n_random: int = 4
    locus_bp: int = 20_000
    seed: int = 0
    cpm: bool = False
    fmt: str = "auto"
    extend: int = 100
    bin_size: int = 25


@dataclass
class Inputs:
    """One sample's inputs, checked before any work is done."""

    sample: Sample
    sizes: dict[str, int]            # chromosomes shown, in chrom-sizes order
    called: dict[str, Peaks]
    truth_chroms: list[str] = field(default_factory=list)
    truth_peaks: dict[str, Peaks] = field(default_factory=dict)
    regions: dict[str, Peaks] | None = None
    provenance: dict = field(default_factory=dict)
    qc: dict = field(default_factory=dict)
    noisy_bigwig: str = ""           # set by bin_noisy: the shallow input, or its binned coverage
    n_insertions: int | None = None  # counted while binning a reads input (a bigWig input has no count)

    @property
    def paths(self) -> dict[str, str]:
        s = self.sample
        named = {"denoised": s.denoised, "peakprob": s.peakprob, "peaks": s.peaks, "noisy": s.noisy,
                 "truth": s.truth, "truth peaks": s.truth_peaks, "regions": s.regions, "qc": s.qc}
        return {k: v for k, v in named.items() if v}


def check_inputs(sample: Sample, all_sizes: dict[str, int], chrom_sizes, settings: Settings) -> Inputs:
    sizes = _shown_chroms(all_sizes, sample.denoised, settings.chroms, chrom_sizes)
    _check_lengths(sample.peakprob, sizes)
    called = read_peaks(sample.peaks)
    if called:
        check_shared_chroms(sample.peaks, called, sizes)
    inputs = Inputs(sample, sizes, called, provenance=_read_provenance(sample), qc=_read_qc(sample.qc))
    if settings.fmt == "auto":  # a missing or empty shallow input fails here, not after the samples before it
        from atacdenoise.io.reads import detect_format

        detect_format(sample.noisy)
    if sample.truth is not None:
        truth_sizes = bigwig_chrom_sizes(sample.truth)
        check_shared_chroms(sample.truth, truth_sizes, sizes)
        inputs.truth_chroms = [c for c in sizes if c in truth_sizes]
        _check_lengths(sample.truth, {c: sizes[c] for c in inputs.truth_chroms})
        inputs.truth_peaks = read_peaks(sample.truth_peaks) if sample.truth_peaks else {}
        inputs.regions = read_peaks(sample.regions) if sample.regions else None
    elif sample.truth_peaks or sample.regions:
        raise InputError(sample.truth_peaks or sample.regions, "--truth-peaks and --regions need --truth")
    return inputs


def fspath(path) -> str | None:
    return None if path is None else os.fspath(path)


def _shown_chroms(sizes: dict[str, int], denoised, chroms: list[str] | None, chrom_sizes) -> dict[str, int]:
    """Chromosomes of the chrom sizes that the denoised track has (or those asked for)."""
    in_track = bigwig_chrom_sizes(denoised)
    check_shared_chroms(denoised, in_track, sizes)
    shown = {c: n for c, n in sizes.items() if c in in_track}
    shown = select_chroms(shown, chroms, chrom_sizes, f"both the chrom sizes and {denoised}")
    _check_lengths(denoised, shown)
    return shown


def _check_lengths(path, sizes: dict[str, int]) -> None:
    in_track = bigwig_chrom_sizes(path)
    for chrom, length in sizes.items():
        if chrom not in in_track:
            raise InputError(path, f"lacks chromosome {chrom}")
        if in_track[chrom] != length:
            raise InputError(path, f"{chrom} is {in_track[chrom]:,} bp here but {length:,} bp in the chrom sizes")


def bin_noisy(inputs: Inputs, settings: Settings, work: Path) -> None:
    """The shallow input as a bigWig: itself, or its binned coverage written under ``work``."""
    from atacdenoise.io.bigwig import write_bigwig
    from atacdenoise.io.reads import detect_format, iter_insertions
    from atacdenoise.tracks.binning import coverage_bins

    noisy, sizes, bin_size = inputs.sample.noisy, inputs.sizes, settings.bin_size
    if (detect_format(noisy) if settings.fmt == "auto" else settings.fmt) == "bigwig":
        _check_lengths(noisy, sizes)
        inputs.noisy_bigwig = noisy
        return
    # Text inputs come in file order, a bigWig needs chrom-sizes order: park each chromosome on disk meanwhile.
    work.mkdir()
    parked, inputs.n_insertions = {}, 0
    for k, (chrom, positions) in enumerate(iter_insertions(noisy, sizes, settings.fmt)):
        parked[chrom] = work / f"{k}.npy"
        inputs.n_insertions += positions.size
        np.save(parked[chrom], coverage_bins(positions, sizes[chrom], bin_size=bin_size, extend=settings.extend))

    def tracks():
        for chrom, length in sizes.items():
            yield chrom, (np.load(parked[chrom]) if chrom in parked else np.zeros(-(-length // bin_size), np.float32))

    inputs.noisy_bigwig = os.fspath(work / "noisy.bw")
    write_bigwig(inputs.noisy_bigwig, sizes, tracks(), bin_size)


def _read_json(path, what: str):
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise InputError(path, f"{what} is not valid JSON ({err})") from None


def read_baselines(path) -> dict[str, dict]:
    """``{method: {metric: number or null}}`` from JSON."""
    if path is None:
        return {}
    rows = _read_json(path, "the baselines file")
    valid = isinstance(rows, dict) and all(
        isinstance(row, dict) and all(v is None or isinstance(v, (int, float)) for v in row.values())
        for row in rows.values())
    if not valid:
        raise InputError(path, 'expected {"method": {"metric": number or null, ...}, ...}')
    return rows


def provenance_beside(denoised: str | os.PathLike) -> Path:
    """Where ``denoise`` leaves its provenance: ``PREFIX.provenance.json`` beside ``PREFIX.denoised.bw``."""
    denoised = Path(denoised)
    return denoised.with_name(re.sub(r"\.denoised\.(bw|bigwig)$", "", denoised.name, flags=re.I) + ".provenance.json")


def _read_provenance(sample: Sample) -> dict:
    """The file beside the denoised track (when there), updated with what was given (a dict or a JSON file)."""
    found = {}
    beside = provenance_beside(sample.denoised)
    if beside.is_file():
        found = _read_json(beside, "the provenance file")
    given = sample.provenance
    if isinstance(given, (str, os.PathLike)):
        given = _read_json(given, "the provenance file")
    for path, value in ((beside, found), (sample.provenance, given)):
        if value and not isinstance(value, dict):
            raise InputError(path, 'expected a JSON object {"model": ..., "onnx_sha256": ..., ...}')
    return {**found, **(given or {})}


def _read_qc(path) -> dict:
    if path is None:
        return {}
    qc = _read_json(path, "the QC file")
    if not isinstance(qc, dict):
        raise InputError(path, "expected the JSON object `atacdenoise qc` writes")
    return qc


def read_genes(path, sizes: dict[str, int]) -> dict | None:
    """Gene bodies (GTF/GFF3 'gene' records) or intervals (BED) per chromosome, by the genome channels' reader."""
    if path is None:
        return None
    from atacdenoise.io.genome import read_intervals

    return read_intervals(path, sizes, genes_only=True)


def read_search(search_dir) -> tuple[list[dict] | None, dict | None]:
    if search_dir is None:
        return None, None
    from atacdenoise.search.history import read_history

    folder = Path(search_dir)
    if not (folder / "history.jsonl").exists():
        raise InputError(folder, "no history.jsonl in the search folder")
    try:
        history = read_history(folder / "history.jsonl")
        summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").exists() else None
    except json.JSONDecodeError as err:
        raise InputError(folder, f"history.jsonl or summary.json is not valid JSON ({err})") from None
    needed = {"iteration", "val_loss", "parameters", "is_parent", "chosen"}
    if any(not needed <= set(row) for row in history):
        raise InputError(folder / "history.jsonl", f"every line needs the fields {', '.join(sorted(needed))}")
    return history, summary


def read_text(path) -> str:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(path, "not a UTF-8 text file") from None


def read_report_samplesheet(path: str | os.PathLike) -> list[Sample]:
    """Samples from a CSV with columns sample, denoised, peakprob, peaks, noisy and optionally truth,
    truth_peaks, regions, provenance, qc. Relative paths are relative to the samplesheet's folder."""
    path = Path(path)
    with open(_existing(path), newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    columns = set(rows[0]) if rows else set()
    missing = [c for c in SAMPLESHEET_COLUMNS if c not in columns]
    if missing or not rows:
        raise InputError(path, f"needs a header with {', '.join(SAMPLESHEET_COLUMNS)} and one row per sample"
                               + (f" (missing: {', '.join(missing)})" if missing and rows else ""))
    unknown = columns - set(SAMPLESHEET_COLUMNS) - set(SAMPLESHEET_OPTIONAL)
    if unknown:
        raise InputError(path, f"unknown column(s) {', '.join(sorted(unknown))}; optional ones are "
                               f"{', '.join(SAMPLESHEET_OPTIONAL)}")

    def resolve(value: str | None) -> str | None:
        value = (value or "").strip()
        return None if not value else os.fspath(path.parent / value if not os.path.isabs(value) else value)

    samples = []
    for line_no, row in enumerate(rows, start=2):
        if not all((row.get(c) or "").strip() for c in SAMPLESHEET_COLUMNS):
            raise InputError(path, f"line {line_no}: every one of {', '.join(SAMPLESHEET_COLUMNS)} needs a value")
        samples.append(Sample(row["sample"].strip(), *(resolve(row.get(c)) for c in SAMPLESHEET_COLUMNS[1:]),
                              *(resolve(row.get(c)) for c in SAMPLESHEET_OPTIONAL)))
    return samples


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise InputError(path, "file does not exist")
    return path
