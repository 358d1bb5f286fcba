"""ATAC-seq library QC: the numbers every lab reports (ENCODE, ATACseqQC, nf-core/atacseq's MultiQC).

One streaming pass, one chromosome at a time (memory: one chromosome's reads as
numpy arrays, never a per-base genome array), gives:

- ``n_insertions`` and ``fraction_chrM``: Tn5 insertions after the usual read
  filters (BAM: MAPQ, duplicates, proper pairs...; see :class:`ReadFilter`),
  chrM included in the count; everything below is on the nuclear insertions.
- ``fraction_duplicates`` (BAM and fragments): BAM reads flagged duplicate
  (0x400) among mapped primary reads passing the other filters when the file
  has any such flag, else fragments (or single-end 5' ends and strands) sharing
  their coordinates; fragments files: fragments sharing their coordinates
  (repeated lines, and the count column's reads beyond the first).
  ``duplicates_method`` says which.
- ``fragment_length_histogram``: paired data only: fragments per length 0..1000
  (index = length in bp; BAM: the template length of the leftmost mate of
  each kept proper pair; fragments: end - start). Longer ones are counted in
  ``fragments_longer_than_1000``. ``mononucleosome_peak_over_trough`` > 1 says
  the nucleosome periodicity is visible (see :func:`nucleosome_peak`).
- library complexity as ENCODE defines it, on the fragments (or single-end 5'
  ends) before duplicate removal: NRF = distinct / total, PBC1 = M1 / distinct,
  PBC2 = M1 / M2 (M1, M2: locations seen exactly once, twice).
- TSS enrichment: insertions within +-2 kb of every TSS (GTF/GFF3 ``gene``
  starts, or BED6 TSSs; minus-strand TSSs read backwards; TSSs whose window
  leaves the chromosome are skipped) are summed per base into ``tss_profile``
  (4001 values, offsets -2000..2000), divided by the flank mean (the outer 100
  bp at each end). ``tss_enrichment`` is ENCODE's number (encode_task_tss_enrich:
  the profile averaged in 400 bins of 10 bp, normalised by the mean of the 10
  outer bins at each end, maximum bin); ``tss_enrichment_centre`` is ATACseqQC's
  style: the mean of the central 100 bp over the flank mean. ``null`` when the
  flanks hold no insertion.
- ``frip``: nuclear insertions inside the union of the peaks, over all nuclear insertions.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path

log = logging.getLogger(__name__)

MITO = ("chrM", "MT", "M", "chrMT")
MAX_FRAGMENT = 1000
TSS_FLANK = 2000        # profile: -TSS_FLANK..+TSS_FLANK
TSS_EDGE = 100          # the flanks that normalise it: the outer 100 bp at each end
TSS_CENTRE = 100        # tss_enrichment_centre: the central 100 bp
ENCODE_BINS = 400       # encode_task_tss_enrich: 400 bins over +-2 kb (10 bp each)
QC_FORMATS = ("auto", "bam", "insertions", "fragments")


@dataclass
class _Totals:
    """Sums over chromosomes, turned into the QC numbers by :meth:`result`."""

    n_insertions: int = 0
    n_chrM: int = 0
    paired: bool = False
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(MAX_FRAGMENT + 1, np.int64))
    longer: int = 0
    dup_flagged: int = 0           # BAM: reads with the duplicate flag (among filtered, mapped, primary)
    dup_candidates: int = 0        # ... out of these
    reads_total: int = 0           # complexity: reads (fragments) before de-duplication
    distinct: int = 0
    m1: int = 0
    m2: int = 0
    has_fragments: bool = False
    tss_profile: np.ndarray = field(default_factory=lambda: np.zeros(2 * TSS_FLANK + 1, np.int64))
    n_tss: int = 0
    in_peaks: int = 0


def run_qc(input_path: str | os.PathLike, chrom_sizes: dict[str, int], out_prefix: str | os.PathLike,
           fmt: str = "auto", gtf: str | os.PathLike | None = None, peaks: str | os.PathLike | None = None,
           read_filter=None, sample: str | None = None, plots: bool = True,
           multiqc: bool = True) -> tuple[dict, list[str]]:
    """Compute the QC of one library; write ``PREFIX.qc.json`` (+ plots and MultiQC files).

    Returns the QC dict and the paths written. Nothing is written when the input is bad.
    """
    qc = compute_qc(input_path, chrom_sizes, fmt=fmt, gtf=gtf, peaks=peaks, read_filter=read_filter)
    qc["sample"] = sample or Path(out_prefix).name
    prefix = str(out_prefix)
    written = [f"{prefix}.qc.json"]
    if plots:
        written += plot_qc(qc, prefix)
    if multiqc:
        written += write_multiqc(qc, prefix)
    with atomic_path(f"{prefix}.qc.json") as tmp:
        tmp.write_text(json.dumps(qc, indent=1) + "\n")
    return qc, written


def compute_qc(input_path, chrom_sizes: dict[str, int], fmt: str = "auto", gtf=None, peaks=None,
               read_filter=None) -> dict:
    """The QC numbers of one library as a JSON-ready dict (see the module docstring)."""
    from atacdenoise.io.reads import ReadFilter, detect_format

    if fmt not in QC_FORMATS:
        raise InputError(input_path, f"QC reads BAM, insertions or fragments, not {fmt!r}")
    fmt = detect_format(input_path) if fmt == "auto" else fmt
    if fmt == "bigwig":
        raise InputError(input_path, "a bigWig holds coverage, not reads: QC needs BAM, fragments or insertions")
    tss = _read_tss(gtf, chrom_sizes) if gtf else None
    peak_union = _read_peak_union(peaks, chrom_sizes) if peaks else None
    rf = read_filter or ReadFilter()
    rf = replace(rf, exclude_chroms=tuple(c for c in rf.exclude_chroms if c not in MITO))  # QC counts chrM
    totals = _Totals()
    for chrom, positions in _stream(input_path, chrom_sizes, fmt, rf, totals):
        if chrom in MITO:
            totals.n_chrM += len(positions)
            totals.n_insertions += len(positions)
            continue
        totals.n_insertions += len(positions)
        if tss is not None and chrom in tss:
            totals.n_tss += _add_tss_profile(totals.tss_profile, positions, *tss[chrom], chrom_sizes[chrom])
        if peak_union is not None and chrom in peak_union:
            starts, ends = peak_union[chrom]
            totals.in_peaks += int(np.sum(np.searchsorted(positions, ends) - np.searchsorted(positions, starts)))
    if totals.n_insertions == 0:
        raise InputError(input_path, "no insertions pass the filters on the chromosomes of the chrom sizes "
                                     "(empty library?)")
    if tss is not None and totals.n_tss == 0:
        raise InputError(gtf, "no TSS on the input's chromosomes at least 2 kb from a chromosome end")
    return _result(totals, fmt, input_path, gtf, peaks)


# ---------------------------------------------------------------- streaming the input

def _stream(path, chrom_sizes, fmt, rf, totals: _Totals):
    """Yield ``(chrom, sorted insertion positions)``, adding fragment lengths, duplicates and complexity to ``totals``."""
    from atacdenoise.io.reads import FilterCounts, iter_fragments, iter_insertions

    if fmt == "bam":
        yield from _bam_stream(path, chrom_sizes, rf, totals)
    elif fmt == "fragments":
        totals.paired = totals.has_fragments = True
        for chrom, starts, ends, counts in iter_fragments(path, chrom_sizes):
            length = chrom_sizes[chrom]
            inside = (starts >= 0) & (ends <= length)
            starts, ends, counts = starts[inside], ends[inside], counts[inside]
            _add_lengths(totals, np.repeat(ends - starts, counts))
            _add_complexity(totals, _fragment_keys(starts, ends), counts)
            positions = np.concatenate([np.repeat(starts, counts), np.repeat(ends - 1, counts)])
            positions.sort(kind="stable")
            yield chrom, positions
    else:
        yield from iter_insertions(path, chrom_sizes, fmt, rf, FilterCounts())


def _bam_stream(path, chrom_sizes, rf, totals: _Totals):
    # The reader's own checks (BGZF, sort order, index) and read filter, so QC counts what `insertions` keeps.
    from atacdenoise.io.reads import (DUPLICATE, PAIRED, PROPER_PAIR, REVERSE, FilterCounts, check_shared_chroms,
                                      contig_records, open_checked_bam, read_filter_mask)

    bam = open_checked_bam(Path(path))
    with bam:
        check_shared_chroms(path, bam.references, chrom_sizes)
        for chrom, length in chrom_sizes.items():
            if chrom in rf.exclude_chroms or chrom not in bam.references:
                continue
            r = contig_records(Path(path), bam, chrom)
            flags, mapqs, starts, ends, tlens = r["flags"], r["mapqs"], r["starts"], r["ends"], r["tlens"]
            # Before de-duplication (complexity, duplicate fraction): every other filter applies.
            undeduped = read_filter_mask(flags, mapqs, replace(rf, keep_duplicates=True), FilterCounts())
            dup = (flags & DUPLICATE) != 0
            totals.dup_flagged += int((undeduped & dup).sum())
            totals.dup_candidates += int(undeduped.sum())
            reverse = (flags & REVERSE) != 0
            paired = (flags & PAIRED) != 0
            leftmost = undeduped & paired & ((flags & PROPER_PAIR) != 0) & (tlens > 0)
            if leftmost.any():
                totals.paired = True
                keys = _fragment_keys(starts[leftmost], starts[leftmost] + tlens[leftmost])
            else:  # single-end: a read's 5' end and strand
                five = np.where(reverse, ends - 1, starts)[undeduped & ~paired]
                keys = five * 2 + reverse[undeduped & ~paired]
            _add_complexity(totals, keys, np.ones(len(keys), np.int64))
            totals.has_fragments = True
            kept = undeduped & (rf.keep_duplicates | ~dup)
            _add_lengths(totals, tlens[kept & leftmost])
            positions = np.where(reverse, ends - 1 + rf.shift_minus, starts + rf.shift_plus)[kept]
            positions = positions[(positions >= 0) & (positions < length)]
            positions.sort(kind="stable")
            yield chrom, positions


def _fragment_keys(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    return starts.astype(np.int64) * (1 << 32) + ends.astype(np.int64)


def _add_lengths(totals: _Totals, lengths: np.ndarray) -> None:
    lengths = lengths[lengths >= 0]
    totals.longer += int((lengths > MAX_FRAGMENT).sum())
    totals.histogram += np.bincount(lengths[lengths <= MAX_FRAGMENT], minlength=MAX_FRAGMENT + 1)


def _add_complexity(totals: _Totals, keys: np.ndarray, counts: np.ndarray) -> None:
    """Reads per distinct location (``counts`` reads at each key; a key may repeat)."""
    if not len(keys):
        return
    _, inverse = np.unique(keys, return_inverse=True)
    per_location = np.bincount(inverse, weights=counts).astype(np.int64)
    totals.reads_total += int(per_location.sum())
    totals.distinct += len(per_location)
    totals.m1 += int((per_location == 1).sum())
    totals.m2 += int((per_location == 2).sum())


# ---------------------------------------------------------------- TSS and peaks

def _read_tss(path, chrom_sizes: dict[str, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Unique (TSS, strand) per chromosome from a GTF/GFF3 (gene records) or BED6, via the genome-channel reader."""
    from atacdenoise.io.genome import read_intervals

    if not Path(path).is_file():
        raise InputError(path, "gene annotation (GTF/GFF3/BED) does not exist")
    out = {}
    for chrom, iv in read_intervals(path, chrom_sizes, genes_only=True).items():
        tss = np.where(iv.strands < 0, iv.ends - 1, iv.starts)
        pairs = np.unique(np.stack([tss, iv.strands]), axis=1)
        out[chrom] = (pairs[0], pairs[1])
    if not out:
        raise InputError(path, "no genes on the chromosomes of the chrom sizes")
    return out


def _add_tss_profile(profile: np.ndarray, positions: np.ndarray, tss: np.ndarray, strands: np.ndarray,
                     length: int) -> int:
    """Add the insertions within +-TSS_FLANK of each TSS to ``profile`` (minus strand reversed); TSSs used."""
    ok = (tss - TSS_FLANK >= 0) & (tss + TSS_FLANK < length)
    tss, strands = tss[ok], strands[ok]
    lo = np.searchsorted(positions, tss - TSS_FLANK)
    hi = np.searchsorted(positions, tss + TSS_FLANK + 1)
    chunk = 2000  # TSSs at a time: bounds the offsets array
    for i in range(0, len(tss), chunk):
        n = hi[i:i + chunk] - lo[i:i + chunk]
        if not n.sum():
            continue
        owner = np.repeat(np.arange(len(n)), n)
        index = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo[i:i + chunk], n)
        offsets = positions[index] - tss[i:i + chunk][owner]
        offsets = np.where(strands[i:i + chunk][owner] < 0, -offsets, offsets)
        profile += np.bincount(offsets + TSS_FLANK, minlength=len(profile))
    return len(tss)


def _read_peak_union(path, chrom_sizes: dict[str, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from atacdenoise.io.chromsizes import check_shared_chroms
    from atacdenoise.io.narrowpeak import peak_union, read_peaks

    found = read_peaks(path)
    if found:
        check_shared_chroms(path, list(found), chrom_sizes)
    return {chrom: peak_union(p, chrom_sizes[chrom]) for chrom, p in found.items() if chrom in chrom_sizes}


def tss_scores(profile: np.ndarray) -> tuple[list[float] | None, float | None, float | None]:
    """(normalised profile, ENCODE enrichment, centre enrichment) of a summed per-base TSS profile."""
    flank = np.concatenate([profile[:TSS_EDGE], profile[-TSS_EDGE:]]).mean()
    if flank <= 0:
        return None, None, None
    normalised = profile / flank
    per_bin = profile[:-1].reshape(ENCODE_BINS, -1).mean(axis=1)  # 4000 bases -> 400 bins of 10 bp
    edge_bins = TSS_EDGE * ENCODE_BINS // (2 * TSS_FLANK)
    noise = np.concatenate([per_bin[:edge_bins], per_bin[-edge_bins:]]).mean()
    centre = profile[TSS_FLANK - TSS_CENTRE // 2:TSS_FLANK + TSS_CENTRE // 2].mean()
    encode = float(per_bin.max() / noise) if noise > 0 else None
    return [round(float(v), 4) for v in normalised], encode, float(centre / flank)


def nucleosome_peak(histogram: np.ndarray) -> dict:
    """Is the mono-nucleosome peak visible? The 21-bp running mean's maximum in 160-300 bp over its minimum
    between 100 bp and that maximum: above 1 the fragment lengths rise again after the nucleosome-free ones
    (periodicity visible), at or below 1 they only fall."""
    smooth = np.convolve(np.asarray(histogram, float), np.ones(21) / 21, mode="same")
    peak = 160 + int(np.argmax(smooth[160:301]))
    trough = float(smooth[100:peak].min())
    return {"mononucleosome_peak_bp": peak,
            "mononucleosome_peak_over_trough": float(smooth[peak] / trough) if trough > 0 else None}


# ---------------------------------------------------------------- the result

def _ratio(a: float, b: float) -> float | None:
    return float(a) / float(b) if b else None


def _result(t: _Totals, fmt: str, input_path, gtf, peaks) -> dict:
    nuclear = t.n_insertions - t.n_chrM
    if fmt == "bam":
        by_flag = t.dup_flagged > 0
        dup_method = ("duplicate flag (0x400)" if by_flag else
                      "identical fragment coordinates (no read is flagged duplicate)")
        fraction_dup = (_ratio(t.dup_flagged, t.dup_candidates) if by_flag
                        else (1 - _ratio(t.distinct, t.reads_total) if t.reads_total else None))
    elif fmt == "fragments":
        dup_method = "identical fragment coordinates (repeated lines and the count column)"
        fraction_dup = 1 - _ratio(t.distinct, t.reads_total) if t.reads_total else None
    else:
        dup_method, fraction_dup = "not available for an insertions file", None
    result = {
        "input": str(input_path),
        "format": fmt,
        "n_insertions": int(t.n_insertions),
        "n_insertions_nuclear": int(nuclear),
        "fraction_chrM": _ratio(t.n_chrM, t.n_insertions),
        "fraction_duplicates": fraction_dup,
        "duplicates_method": dup_method,
        "nrf": _ratio(t.distinct, t.reads_total) if t.has_fragments else None,
        "pbc1": _ratio(t.m1, t.distinct) if t.has_fragments else None,
        "pbc2": _ratio(t.m1, t.m2) if t.has_fragments else None,
        "complexity_reads": int(t.reads_total),
        "complexity_distinct": int(t.distinct),
    }
    if t.paired:
        result["n_fragments"] = int(t.histogram.sum() + t.longer)
        result["fragments_longer_than_1000"] = int(t.longer)
        result["fragment_length_histogram"] = t.histogram.tolist()
        result["fraction_mononucleosome"] = _ratio(t.histogram[147:295].sum(), t.histogram.sum())
        result["fraction_nucleosome_free"] = _ratio(t.histogram[:147].sum(), t.histogram.sum())
        result.update(nucleosome_peak(t.histogram))
    else:
        result["fragment_length_histogram"] = None
    if gtf:
        profile, encode, centre = tss_scores(t.tss_profile)
        result.update({"annotation": str(gtf), "n_tss": int(t.n_tss), "tss_enrichment": encode,
                       "tss_enrichment_centre": centre, "tss_profile": profile,
                       "tss_profile_offsets": [-TSS_FLANK, TSS_FLANK]})
        if encode is None:
            log.warning("no insertion in the TSS flanks: TSS enrichment undefined (null)")
    if peaks:
        result.update({"peaks": str(peaks), "frip": _ratio(t.in_peaks, nuclear),
                       "n_insertions_in_peaks": int(t.in_peaks)})
    return result


# ---------------------------------------------------------------- plots and MultiQC

def plot_qc(qc: dict, prefix: str) -> list[str]:
    """Fragment-length distribution (log y) and TSS profile as PNGs, when the data has them."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    written = []
    if qc.get("fragment_length_histogram"):
        hist = np.asarray(qc["fragment_length_histogram"], dtype=float)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(np.arange(len(hist)), np.where(hist > 0, hist, np.nan), lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("fragment length (bp)")
        ax.set_ylabel("fragments")
        ax.set_title(f"{qc['sample']}: fragment lengths")
        written.append(_save(fig, f"{prefix}.fragment_lengths.png"))
    if qc.get("tss_profile"):
        profile = np.asarray(qc["tss_profile"])
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(np.arange(-TSS_FLANK, TSS_FLANK + 1), profile, lw=0.6, color="0.6", label="per base")
        step = 2 * TSS_FLANK // ENCODE_BINS
        ax.plot(np.arange(-TSS_FLANK, TSS_FLANK, step) + step / 2, profile[:-1].reshape(ENCODE_BINS, -1).mean(axis=1),
                lw=1.2, label="10 bp bins")
        ax.set_xlabel("distance to TSS (bp)")
        ax.set_ylabel("insertions / flank mean")
        ax.set_title(f"{qc['sample']}: TSS enrichment {qc['tss_enrichment']:.2f}" if qc.get("tss_enrichment")
                     else f"{qc['sample']}: TSS profile")
        ax.legend(frameon=False)
        written.append(_save(fig, f"{prefix}.tss_profile.png"))
    return written


def _save(fig, path: str) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


MQC_SECTIONS = ("atacdenoise_qc_general", "atacdenoise_qc_fragment_lengths", "atacdenoise_qc_tss_profile")


def multiqc_sections(qc: dict) -> dict[str, dict]:
    """MultiQC custom content (one JSON per section, by section id): general stats and two line graphs."""
    sample = qc["sample"]
    stats = {"n_insertions": qc["n_insertions"], "fraction_chrM": qc["fraction_chrM"],
             "fraction_duplicates": qc["fraction_duplicates"], "nrf": qc["nrf"], "pbc1": qc["pbc1"],
             "tss_enrichment": qc.get("tss_enrichment"), "frip": qc.get("frip")}
    stats = {k: v for k, v in stats.items() if v is not None}
    fraction = {"min": 0, "max": 1, "format": "{:,.3f}"}
    headers = {"n_insertions": {"title": "Insertions", "description": "Tn5 insertions after filters", "format": "{:,.0f}"},
               "fraction_chrM": {"title": "chrM", "description": "fraction of insertions on chrM", **fraction},
               "fraction_duplicates": {"title": "Dups", "description": "fraction of duplicates", **fraction},
               "nrf": {"title": "NRF", "description": "non-redundant fraction (ENCODE)", **fraction},
               "pbc1": {"title": "PBC1", "description": "PCR bottlenecking coefficient 1 (ENCODE)", **fraction},
               "tss_enrichment": {"title": "TSS enr.", "description": "TSS enrichment (ENCODE)", "format": "{:,.2f}"},
               "frip": {"title": "FRiP", "description": "fraction of insertions in peaks", **fraction}}
    sections = {MQC_SECTIONS[0]: {
        "id": MQC_SECTIONS[0], "section_name": "atacdenoise QC", "plot_type": "generalstats",
        # every column, always: MultiQC takes the headers of one file per section id
        "pconfig": [{k: v} for k, v in headers.items()], "data": {sample: stats}}}
    if qc.get("fragment_length_histogram"):
        hist = qc["fragment_length_histogram"]
        sections[MQC_SECTIONS[1]] = {
            "id": MQC_SECTIONS[1], "section_name": "atacdenoise: fragment lengths", "plot_type": "linegraph",
            "description": "Fragments per length: nucleosome-free below ~147 bp, then one peak per nucleosome.",
            "pconfig": {"id": f"{MQC_SECTIONS[1]}_plot", "title": "atacdenoise: fragment lengths",
                        "xlab": "fragment length (bp)", "ylab": "fragments", "logswitch": True},
            "data": {sample: {str(i): int(v) for i, v in enumerate(hist) if i > 0}}}
    if qc.get("tss_profile"):
        profile = np.asarray(qc["tss_profile"])[:-1].reshape(ENCODE_BINS, -1).mean(axis=1)
        step = 2 * TSS_FLANK // ENCODE_BINS
        sections[MQC_SECTIONS[2]] = {
            "id": MQC_SECTIONS[2], "section_name": "atacdenoise: TSS profile", "plot_type": "linegraph",
            "description": "Insertions around TSSs (10 bp bins), divided by the mean of the outer 100 bp.",
            "pconfig": {"id": f"{MQC_SECTIONS[2]}_plot", "title": "atacdenoise: TSS profile",
                        "xlab": "distance to TSS (bp)", "ylab": "insertions / flank mean"},
            "data": {sample: {str(-TSS_FLANK + step * i + step // 2): round(float(v), 4)
                              for i, v in enumerate(profile)}}}
    return sections


def write_multiqc(qc: dict, prefix: str) -> list[str]:
    """``PREFIX.<section>_mqc.json`` per section; files of several samples with one id merge in MultiQC."""
    written = []
    for section_id, content in multiqc_sections(qc).items():
        path = f"{prefix}.{section_id}_mqc.json"
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(content) + "\n")
        written.append(path)
    return written
