"""Genome channels: per-bin tracks of what the genome says, laid beside the counts as extra input channels.

A model's channels are a list of :class:`ChannelSpec` written into its ONNX
contract; training and ``denoise`` render them the same way from the user's
files, one chromosome at a time. Renderings (all in [0, 1], all unchanged when
a window is reversed, so mirrored training windows stay valid):

- ``tss`` (GTF, GFF3 gene records or BED with strand): ``exp(-d / 1000 bp)``,
  ``d`` the distance from the bin centre to the nearest gene start. A point
  feature, so a decay: a 1-bp TSS would be invisible as an overlap and its
  influence reaches a few hundred bp either way.
- ``cpg_islands``, ``ctcf_sites`` and any other BED/GTF/GFF3: the fraction of
  the bin's bases inside the file's intervals.
- a user's bigWig: ``log1p`` of its mean per bin (the one rendering not
  bounded by 1; the network's first layer scales it).
- ``blacklist``: not a channel but a training mask: no training or validation
  window's target (signal or peak labels) touches it. The counts there are
  left as they are, in training and at denoising: masking them was measured
  to zero the denoised track where the deep library has signal (HSC chr2, 0.5M:
  per-base Pearson 0.847 -> 0.819 with the input masked at denoising).
- ``sequence`` from ``--fasta``, in one of two forms (``--sequence``; measured
  against each other in ``benchmarks/bench_channels.py``):
  ``fixed``: per-bin features ``gc_fraction`` (G+C of A/C/G/T bases),
  ``cpg_density`` (``min(10 * CpG per bin / bin_size, 1)``: ~0.1 genome-wide
  in human, ~1 in CpG islands) and ``n_fraction`` (bases that are N or another
  IUPAC code: no mappable reads come from them);
  ``learned``: ``base_codes``, ``bin_size`` channels holding each bin's bases
  as codes (``io.genome.BASE_CODE``) that the network's learned sequence
  tower reads (``models.common.InputEncoder``). A reversed window must also be
  complemented (``search.candidate.mirror_batch`` does). ``both`` gives both.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.tracks.bin_grid import n_bins

TSS_DECAY_BP = 1000
SEQUENCE_FEATURES = ("gc_fraction", "cpg_density", "n_fraction")
KNOWN_ANNOTATIONS = {  # the fixed names and how each is rendered
    "tss": "decay", "cpg_islands": "overlap", "ctcf_sites": "overlap", "blacklist": "mask",
}
SEQUENCE_MODES = ("fixed", "learned", "both")
RENDERINGS = ("decay", "overlap", "log1p_mean", *SEQUENCE_FEATURES, "base_codes")
TOWER_FILTERS = 8


@dataclass(frozen=True)
class ChannelSpec:
    """One input channel: ``name`` (annotation name, or ``sequence``), how it is rendered, its scale in bp."""

    name: str
    render: str
    scale_bp: int = 0
    width: int = 1  # input channels it takes (base_codes: one per base of a bin)

    def __post_init__(self):
        if self.render not in RENDERINGS:
            raise ValueError(f"channel {self.name!r}: render must be one of {RENDERINGS}, got {self.render!r}")

    @property
    def needs_fasta(self) -> bool:
        return self.render in SEQUENCE_FEATURES or self.render == "base_codes"

    def to_dict(self) -> dict:
        return asdict(self)


def plan_channels(annotations: dict[str, str | os.PathLike], sequence: str | None,
                  bin_size: int = 25) -> list[ChannelSpec]:
    """The channels a new model gets from the user's files (sequence first, then annotation in given order).

    ``sequence``: None (no FASTA) or one of :data:`SEQUENCE_MODES`.
    """
    from atacdenoise.io.genome import detect_annotation_format

    if sequence not in (None, *SEQUENCE_MODES):
        raise InputError(None, f"--sequence must be one of {', '.join(SEQUENCE_MODES)}, got {sequence!r}")
    specs = []
    if sequence in ("fixed", "both"):
        specs += [ChannelSpec("sequence", feature) for feature in SEQUENCE_FEATURES]
    if sequence in ("learned", "both"):
        specs.append(ChannelSpec("sequence", "base_codes", width=bin_size))
    for name, path in annotations.items():
        render = KNOWN_ANNOTATIONS.get(name)
        if render == "mask":
            continue
        if render is None:
            render = "log1p_mean" if detect_annotation_format(path) == "bigwig" else "overlap"
        specs.append(ChannelSpec(name, render, TSS_DECAY_BP if render == "decay" else 0))
    return specs


def parse_annotation_args(values: list[str] | None) -> dict[str, str]:
    """``["tss=genes.gtf", ...]`` -> ``{"tss": "genes.gtf"}`` (a name given twice is an error)."""
    out: dict[str, str] = {}
    for value in values or ():
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise InputError(None, f"--annotation takes NAME=FILE (e.g. tss=genes.gtf), got {value!r}")
        if name in out:
            raise InputError(None, f"--annotation {name} given twice")
        if name == "sequence":
            raise InputError(None, "'sequence' is not an annotation name: give the reference with --fasta")
        out[name] = path
    return out


def training_genome(chrom_sizes: dict[str, int], bin_size: int, fasta=None,
                    annotation_args: list[str] | None = None, sequence: str = "fixed") -> "GenomeChannels | None":
    """The genome channels a new model trains with (None when neither FASTA nor annotation is given)."""
    annotations = parse_annotation_args(annotation_args)
    if fasta is None and not annotations:
        return None
    return GenomeChannels(plan_channels(annotations, sequence if fasta is not None else None, bin_size),
                          chrom_sizes, bin_size, annotations, fasta)


def channel_count(channels: list[dict]) -> int:
    """Input channels taken by genome channels recorded as spec dicts (the signal not counted)."""
    return sum(int(c.get("width", 1)) for c in channels)


def base_code_slice(channels: list[dict]) -> slice | None:
    """Which input channels hold base codes (None: none do)."""
    first = 1
    for c in channels:
        width = int(c.get("width", 1))
        if c["render"] == "base_codes":
            return slice(first, first + width)
        first += width
    return None


def model_inputs(channels: list[dict]) -> dict:
    """The model config keys for data with ``channels`` (spec dicts as pairs and contracts record them):
    ``input_channels`` and, for base codes, the ``sequence_tower`` that reads them."""
    config = {"input_channels": 1 + channel_count(channels)}
    codes = base_code_slice(channels)
    if codes is not None:
        config["sequence_tower"] = {"first": codes.start, "width": codes.stop - codes.start,
                                    "filters": TOWER_FILTERS}
    return config


class GenomeChannels:
    """Renders ``specs`` (and the blacklist mask) per chromosome from the user's files.

    The FASTA, when a channel needs it, is read once here (one streaming pass:
    per-bin base counts of every chromosome of ``chrom_sizes`` go to ``scratch``
    as ``.npy``, so memory stays one chromosome's bins) and ``md5`` maps each
    of its chromosomes to its SAM M5 digest.
    """

    def __init__(self, specs: list[ChannelSpec], chrom_sizes: dict[str, int], bin_size: int,
                 annotations: dict[str, str | os.PathLike] | None = None, fasta: str | os.PathLike | None = None,
                 scratch: str | os.PathLike | None = None, model: str | None = None):
        self.specs, self.chrom_sizes, self.bin_size = list(specs), chrom_sizes, bin_size
        self.annotations = dict(annotations or {})
        for spec in self.specs:
            if not spec.needs_fasta and spec.name not in self.annotations:
                raise InputError(model, f"the model needs annotation channel {spec.name!r}: give it with "
                                        f"--annotation {spec.name}=FILE" + _where_to_get(spec.name))
        if any(spec.needs_fasta for spec in self.specs) and fasta is None:
            raise InputError(model, "the model reads the DNA sequence: give the reference genome with --fasta")
        self._intervals = {spec.name: self._read(spec) for spec in self.specs if spec.render in ("decay", "overlap")}
        self._blacklist = None
        if "blacklist" in self.annotations:
            from atacdenoise.io.genome import read_intervals

            self._blacklist = read_intervals(self.annotations["blacklist"], chrom_sizes)
        self.fasta, self.md5 = fasta, {}
        self._scratch_owner = None
        if any(spec.needs_fasta for spec in self.specs):
            if scratch is None:
                self._scratch_owner = tempfile.TemporaryDirectory(prefix="atacdenoise-seq-")
                scratch = self._scratch_owner.name
            self._scratch = Path(scratch)
            self._read_fasta()

    @property
    def n_channels(self) -> int:
        return sum(spec.width for spec in self.specs)

    @property
    def has_blacklist(self) -> bool:
        return self._blacklist is not None

    def _read(self, spec: ChannelSpec):
        from atacdenoise.io.genome import read_intervals

        return read_intervals(self.annotations[spec.name], self.chrom_sizes, genes_only=spec.name == "tss")

    def _read_fasta(self) -> None:
        from atacdenoise.io.genome import check_fasta_chroms, iter_sequence_bins

        self._files, self._codes, names = {}, {}, []
        wants_codes = any(spec.render == "base_codes" for spec in self.specs)
        for bins in iter_sequence_bins(self.fasta, self.bin_size, self._scratch if wants_codes else None):
            names.append(bins.chrom)
            if bins.chrom not in self.chrom_sizes:
                continue
            if bins.length != self.chrom_sizes[bins.chrom]:
                raise InputError(self.fasta, f"{bins.chrom} is {bins.length:,} bp here but "
                                             f"{self.chrom_sizes[bins.chrom]:,} bp in the chrom sizes: another assembly")
            self._files[bins.chrom] = self._scratch / f"{len(self._files)}.npy"
            np.save(self._files[bins.chrom], bins.counts)
            self._codes[bins.chrom] = bins.codes_path
            self.md5[bins.chrom] = bins.md5
        check_fasta_chroms(self.fasta, names, list(self.chrom_sizes), self.chrom_sizes)

    def render(self, chrom: str, bins: tuple[int, int] | None = None) -> np.ndarray:
        """``(n_channels, n_bins)`` float32 for ``chrom``; ``bins=(lo, hi)``: only those bins, the same values as
        ``render(chrom)[:, lo:hi]`` (denoise renders chunk by chunk: memory bounded by the chunk)."""
        length = self.chrom_sizes[chrom]
        nb = n_bins(length, self.bin_size)
        bins = (0, nb) if bins is None else bins
        out = np.zeros((self.n_channels, bins[1] - bins[0]), np.float32)
        counts = None
        rows = np.cumsum([0] + [spec.width for spec in self.specs])
        for i, spec in zip(rows, self.specs):
            if spec.render == "base_codes":
                out[i:i + spec.width] = base_code_bins(self._codes[chrom], nb, self.bin_size, bins)
            elif spec.needs_fasta:
                if counts is None:
                    counts = np.load(self._files[chrom], mmap_mode="r")[:, bins[0]:bins[1]]
                out[i] = sequence_feature(counts, spec.render, self.bin_size)
            elif spec.render == "decay":
                out[i] = decay_bins(self._intervals[spec.name].get(chrom), nb, self.bin_size, spec.scale_bp, bins)
            elif spec.render == "overlap":
                out[i] = overlap_bins(self._intervals[spec.name].get(chrom), nb, self.bin_size, bins)
            else:
                from atacdenoise.tracks.binning import bigwig_bins

                out[i] = np.log1p(np.clip(bigwig_bins(self.annotations[spec.name], chrom, length, self.bin_size,
                                                      bins=bins), 0, None))
        return out

    def blacklist_bins(self, chrom: str) -> np.ndarray | None:
        """True for bins any blacklisted base touches (None without a blacklist)."""
        if self._blacklist is None:
            return None
        nb = n_bins(self.chrom_sizes[chrom], self.bin_size)
        return overlap_bins(self._blacklist.get(chrom), nb, self.bin_size) > 0

    def check_md5(self, expected: dict[str, str], chroms, source=None) -> None:
        """Refuse a FASTA whose sequence of a used chromosome differs from what the model was trained on."""
        for chrom in chroms:
            if chrom in expected and self.md5.get(chrom) != expected[chrom]:
                raise InputError(self.fasta, f"{chrom} differs from the sequence model {source} was trained on "
                                             f"(MD5 {self.md5.get(chrom)} vs {expected[chrom]}): another assembly")


def _where_to_get(name: str) -> str:
    hints = {"tss": " (a GTF/GFF3 of genes, e.g. GENCODE or Ensembl, or a BED6 of TSSs)",
             "cpg_islands": " (UCSC cpgIslandExt as BED)", "ctcf_sites": " (ENCODE CTCF sites as BED)"}
    return hints.get(name, "")


def merged(intervals) -> tuple[np.ndarray, np.ndarray]:
    """Union of sorted intervals as disjoint (starts, ends)."""
    from atacdenoise.io.narrowpeak import sorted_union

    if intervals is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return sorted_union(intervals.starts, intervals.ends)


def overlap_bins(intervals, total_bins: int, bin_size: int, bins: tuple[int, int] | None = None) -> np.ndarray:
    """Fraction of each bin's bases inside the intervals (their union); ``bins=(lo, hi)``: those bins only."""
    lo, hi = (0, total_bins) if bins is None else bins
    starts, ends = merged(intervals)
    edges = np.arange(lo, hi + 1, dtype=np.int64) * bin_size
    if not len(starts):
        return np.zeros(hi - lo, np.float32)
    before = np.concatenate([[0], np.cumsum(ends - starts)])  # covered bases before interval i
    i = np.searchsorted(starts, edges, side="right") - 1  # last interval starting at or before the edge
    inside = np.where(i >= 0, np.clip(edges - starts[np.maximum(i, 0)], 0,
                                      (ends - starts)[np.maximum(i, 0)]), 0)
    covered = np.where(i >= 0, before[np.maximum(i, 0)] + inside, 0)
    return (np.diff(covered) / bin_size).astype(np.float32)


def decay_bins(intervals, total_bins: int, bin_size: int, scale_bp: int,
               bins: tuple[int, int] | None = None) -> np.ndarray:
    """``exp(-d / scale_bp)``, ``d`` = bp from each bin centre to the nearest TSS (0 with none); ``bins=(lo, hi)``:
    those bins only."""
    from atacdenoise.io.genome import tss_positions

    lo, hi = (0, total_bins) if bins is None else bins
    if intervals is None or not len(intervals.starts):
        return np.zeros(hi - lo, np.float32)
    points = tss_positions(intervals).astype(np.float64)
    centres = (np.arange(lo, hi) + 0.5) * bin_size
    j = np.searchsorted(points, centres)
    left = np.abs(centres - points[np.clip(j - 1, 0, len(points) - 1)])
    right = np.abs(points[np.clip(j, 0, len(points) - 1)] - centres)
    return np.exp(-np.minimum(left, right) / scale_bp).astype(np.float32)


def base_code_bins(codes_path, total_bins: int, bin_size: int, bins: tuple[int, int] | None = None) -> np.ndarray:
    """``(bin_size, n_bins)``: row ``j`` = the code of each bin's ``j``-th base (0 past the chromosome end);
    ``bins=(lo, hi)``: those bins only (read from the memory-mapped codes there)."""
    from atacdenoise.io.genome import read_base_codes

    lo, hi = (0, total_bins) if bins is None else bins
    codes = read_base_codes(codes_path)[lo * bin_size:hi * bin_size]
    padded = np.zeros((hi - lo) * bin_size, np.uint8)
    padded[:len(codes)] = codes
    return padded.reshape(hi - lo, bin_size).T


def sequence_feature(counts: np.ndarray, render: str, bin_size: int) -> np.ndarray:
    """One fixed feature from per-bin base counts (``io.genome.BASE_COUNTS`` order)."""
    gc, at, n, cpg = counts.astype(np.float32)
    if render == "gc_fraction":
        return np.where(gc + at > 0, gc / np.maximum(gc + at, 1), 0).astype(np.float32)
    if render == "cpg_density":
        return np.minimum(10 * cpg / bin_size, 1).astype(np.float32)
    return (n / bin_size).astype(np.float32)
