"""``atacdenoise report``: one self-contained HTML page about one or several denoised samples.

Per sample: a summary (peaks called, agreement with the shallow input), the
metric table (against a truth and baselines, when given), genome-browser
panels at the strongest peaks and at random loci (with genes under them when
an annotation is given), a denoised-vs-truth 2D histogram and the provenance
(model, ONNX digest, inputs, software). Once per page: a table across samples
(when there are several), the NASH search curve and the model card.

Figures are matplotlib (Agg) PNGs embedded as base64, the style sheet is
inline: the file opens anywhere, offline, and can be mailed as is. HTML comes
from the templates in ``templates/`` and :mod:`.report_html`, the loci from
:mod:`.report_loci`, the checked inputs from :mod:`.report_inputs`.

Everything is read chromosome by chromosome at 25 bp bins; only the loci
shown and per-chromosome sums are kept. A non-bigWig shallow input (BAM,
insertions, fragments) is first binned into a temporary bigWig so that every
track is read the same way.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from markupsafe import Markup

from atacdenoise.errors import InputError
from atacdenoise import metrics
from atacdenoise.evaluate.evaluate import METRIC_ORDER, evaluate
from atacdenoise.evaluate.report_html import (Section, heading, markdown_to_html, page, paragraph, png, png_bytes,
                                              table)
from atacdenoise.evaluate.report_inputs import (Inputs, Sample, Settings, bin_noisy, check_inputs, fspath,
                                                provenance_beside, read_baselines, read_genes,
                                                read_report_samplesheet, read_search, read_text)
from atacdenoise.evaluate.report_loci import Locus, Tracks, bins, loci_figure, random_loci, strongest_loci
from atacdenoise.io.atomic import atomic_path
from atacdenoise.io.chromsizes import read_chrom_sizes
from atacdenoise.io.narrowpeak import bins_inside, covered_bases
from atacdenoise.tracks.binning import bigwig_bins

__all__ = ["Sample", "Settings", "make_report", "make_samples_report", "read_report_samplesheet", "markdown_to_html"]

log = logging.getLogger(__name__)
GENOME_PASS_CHUNK_BINS = 400_000  # 10 Mb of 25 bp bins per read: the genome pass's memory
HIST_BINS = 120          # cells per axis of the denoised-vs-truth 2D histogram
LONG_VALUE = 160         # provenance values longer than this are cut on the page
# Scalars of an `atacdenoise qc` JSON shown in the table across samples, when a sample has one.
QC_KEYS = ("n_insertions", "fraction_chrM", "fraction_duplicates", "tss_enrichment", "frip")


def make_report(
    denoised: str | os.PathLike,
    peakprob: str | os.PathLike,
    peaks: str | os.PathLike,
    noisy: str | os.PathLike,
    chrom_sizes: str | os.PathLike,
    output: str | os.PathLike,
    truth: str | os.PathLike | None = None,
    truth_peaks: str | os.PathLike | None = None,
    regions: str | os.PathLike | None = None,
    search_dir: str | os.PathLike | None = None,
    model_card: str | os.PathLike | None = None,
    baselines: str | os.PathLike | None = None,
    chroms: list[str] | None = None,
    model_note: str | None = None,
    n_strong: int = 4,
    n_random: int = 4,
    locus_bp: int = 20_000,
    seed: int = 0,
    cpm: bool = False,
    fmt: str = "auto",
    extend: int = 100,
    bin_size: int = 25,
    progress: bool = True,
    genes: str | os.PathLike | None = None,
    provenance: str | os.PathLike | dict | None = None,
    shallow_peaks: str | os.PathLike | None = None,
) -> str:
    """Write the report of one sample to ``output`` (atomically) and return its path.

    Bad input raises InputError and leaves no file (the page is written only when complete).
    """
    sample = Sample(Path(denoised).name, os.fspath(denoised), os.fspath(peakprob), os.fspath(peaks), os.fspath(noisy),
                    truth=fspath(truth), truth_peaks=fspath(truth_peaks), regions=fspath(regions),
                    provenance=provenance if isinstance(provenance, dict) else fspath(provenance),
                    shallow_peaks=fspath(shallow_peaks))
    settings = Settings(chroms=chroms, n_strong=n_strong, n_random=n_random, locus_bp=locus_bp, seed=seed, cpm=cpm,
                        fmt=fmt, extend=extend, bin_size=bin_size)
    return make_samples_report([sample], chrom_sizes, output, settings, search_dir=search_dir, model_card=model_card,
                               baselines=baselines, model_note=model_note, genes=genes, progress=progress)


def make_samples_report(samples: list[Sample], chrom_sizes: str | os.PathLike, output: str | os.PathLike,
                        settings: Settings | None = None, search_dir=None, model_card=None, baselines=None,
                        model_note: str | None = None, genes=None, progress: bool = True) -> str:
    """Write one page about ``samples`` (a table across them first when there are several); return its path."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    settings = settings or Settings()
    say = _Progress(progress)
    if not samples:
        raise InputError(chrom_sizes, "no sample to report on")
    names = [s.name for s in samples]
    if len(set(names)) != len(names):
        raise InputError(samples[0].denoised, f"sample names repeat: {', '.join(names)}")
    # Everything is read and checked before the first chromosome is binned.
    baseline_rows = read_baselines(baselines)
    history, summary = read_search(search_dir)
    card = read_text(model_card) if model_card else None
    sizes = read_chrom_sizes(chrom_sizes)
    checked = [check_inputs(s, sizes, chrom_sizes, settings) for s in samples]
    gene_sets = read_genes(genes, sizes)
    several = len(checked) > 1
    sections, nav, rows = [], [], []
    with tempfile.TemporaryDirectory(prefix="atacdenoise-report.") as work:
        for k, inputs in enumerate(checked):
            prefix = f"s{k + 1}-" if several else ""
            sample_sections, row = _sample_report(inputs, settings, baseline_rows, gene_sets, Path(work), prefix,
                                                  say)
            sections += sample_sections
            rows.append(row)
            nav.append((sample_sections[0].anchor, inputs.sample.name))
        shared = [_search_section(history, summary, Path(work)), _card_section(card)]
    shared = [s for s in shared if s]
    if several:
        sections.insert(0, _samples_section(rows))
        nav = [("samples", "Samples"), *nav, *((s.anchor, s.title) for s in shared)]
    else:
        nav = None
    title = ", ".join(names) if len(names) <= 3 else f"{len(names)} samples"
    html_page = page(title, sections + shared, note=model_note, nav=nav)
    with atomic_path(output) as tmp:
        tmp.write_text(html_page, encoding="utf-8")
    say(f"wrote {output}")
    return os.fspath(output)


class _Progress:
    """One log line per step, with the seconds since the start (the CLI shows INFO lines; ``--quiet`` hides them)."""

    def __init__(self, enabled: bool):
        self.enabled, self.started = enabled, time.perf_counter()

    def __call__(self, what: str) -> None:
        if self.enabled:
            log.info("report: [%6.1f s] %s", time.perf_counter() - self.started, what)


# ---------------------------------------------------------------- one sample

def _sample_report(inputs: Inputs, settings: Settings, baselines: dict, genes, work: Path, prefix: str,
                   say) -> tuple[list[Section], dict]:
    """The sections of one sample (anchors start with ``prefix``) and its row of the table across samples."""
    name = inputs.sample.name
    tag = f"{name}: " if prefix else ""
    say(f"{tag}binning the shallow input")
    bin_noisy(inputs, settings, work / f"{prefix}noisy")
    say(f"{tag}summary and genome-wide pass")
    view = _genome_pass(inputs, settings.bin_size)
    say(f"{tag}metrics")
    scores, notes = _score(inputs, settings)
    tracks = _tracks(inputs, genes, settings.bin_size)
    say(f"{tag}strongest loci")
    with_data = {c: n for c, n in inputs.sizes.items() if c in view.with_data}
    strong = strongest_loci(inputs.called, view.hottest, with_data, settings.n_strong, settings.locus_bp)
    say(f"{tag}random loci")
    random = _random_loci(inputs, view, with_data, settings)
    say(f"{tag}denoised vs truth")
    sections = [
        _summary_section(inputs, view),
        _metrics_section(scores, notes, baselines, settings.cpm),
        _strongest_section(strong, tracks, peaks_called=_n_peaks(inputs) > 0),
        _loci_section("random", "Random loci", random, tracks,
                      f"Drawn uniformly (seed {settings.seed}) over "
                      f"{'the truth regions' if inputs.regions else 'the chromosomes with data'}, passing over "
                      "stretches of pure background: what a stretch with some signal looks like."),
        _scatter_section(inputs, view),
        _provenance_section(inputs),
    ]
    sections = [s for s in sections if s]
    for section in sections:
        section.anchor, section.title = prefix + section.anchor, tag + section.title
    return sections, _sample_row(inputs, view, scores)


def _tracks(inputs: Inputs, genes, bin_size: int) -> Tracks:
    s = inputs.sample
    bigwigs = {"noisy": inputs.noisy_bigwig, "denoised": s.denoised, "peak probability": s.peakprob}
    if s.truth:
        bigwigs["truth"] = s.truth
    return Tracks(bigwigs, inputs.called, inputs.truth_peaks if s.truth else None, inputs.truth_chroms, genes,
                  bin_size)


def _random_loci(inputs: Inputs, view: Overview, with_data: dict[str, int], settings: Settings) -> list[Locus]:
    """Random loci over the truth regions (when given) or the chromosomes with data, skipping flat stretches."""
    s = inputs.sample
    if inputs.regions:
        spans = [(c, a, b) for c, p in inputs.regions.items() if c in inputs.truth_chroms and c in with_data
                 for a, b in zip(p.starts.tolist(), p.ends.tolist())]
    else:
        spans = [(c, 0, length) for c, length in with_data.items()]
    # The reference is the truth where there is one (the panel that looked like a solid block), else the denoised.
    if s.truth and view.truth_bins:
        path, mean = s.truth, view.truth_sum / view.truth_bins
    else:
        path, mean = s.denoised, view.denoised_sum / max(view.bins, 1)
    return random_loci(spans, inputs.sizes, settings.n_random, settings.locus_bp, settings.seed,
                       lambda locus: bins(path, locus.chrom, locus.start, locus.end, settings.bin_size),
                       threshold=2 * mean)


def _n_peaks(inputs: Inputs) -> int:
    return sum(len(p.starts) for c, p in inputs.called.items() if c in inputs.sizes)


# ---------------------------------------------------------------- the genome-wide pass

class _Moments:
    """Running sums for a Pearson correlation over more values than fit in memory."""

    def __init__(self):
        self.n = 0
        self.sums = np.zeros(5)  # x, y, xx, yy, xy

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        x, y = x.astype(np.float64), y.astype(np.float64)
        self.n += x.size
        self.sums += [x.sum(), y.sum(), x @ x, y @ y, x @ y]

    def pearson(self) -> float | None:
        if self.n < 2:
            return None
        sx, sy, sxx, syy, sxy = self.sums / self.n
        denominator = np.sqrt(max(sxx - sx * sx, 0) * max(syy - sy * sy, 0))
        return None if denominator == 0 else float((sxy - sx * sy) / denominator)


@dataclass
class Overview:
    """What one pass over the genome learns: sums, the hottest bins, the 2D histogram."""

    bins: int = 0
    denoised_sum: float = 0.0
    truth_bins: int = 0
    truth_sum: float = 0.0
    probable_bins: int = 0                        # peak probability >= 0.5
    with_data: set = field(default_factory=set)   # chromosomes where the denoised or the shallow track is non-zero
    vs_noisy: _Moments = field(default_factory=_Moments)
    vs_truth: _Moments = field(default_factory=_Moments)
    vs_truth_log: _Moments = field(default_factory=_Moments)
    hottest: list = field(default_factory=list)   # (value, chrom, base) of each chromosome's maximum bin
    histogram: np.ndarray | None = None
    edges: tuple | None = None


def _genome_pass(inputs: Inputs, bin_size: int) -> Overview:
    view, s = Overview(), inputs.sample
    if s.truth:
        view.edges = (_log_edges(s.denoised), _log_edges(s.truth))
        view.histogram = np.zeros((HIST_BINS, HIST_BINS), np.int64)
    for chrom, length in inputs.sizes.items():
        hottest = (-np.inf, chrom, 0)
        centres = (bins_inside(inputs.regions.get(chrom), length, bin_size, rule="centre")
                   if inputs.regions is not None and chrom in inputs.truth_chroms else None)
        for lo, hi in _bin_chunks(length, bin_size):
            read = partial(bigwig_bins, chrom=chrom, length=length, bin_size=bin_size, bins=(lo, hi))
            denoised, noisy = read(s.denoised), read(inputs.noisy_bigwig)
            view.bins += denoised.size
            view.denoised_sum += float(denoised.sum())
            view.probable_bins += int((read(s.peakprob) >= 0.5).sum())
            view.vs_noisy.add(denoised, noisy)
            if denoised.any() or noisy.any():
                view.with_data.add(chrom)
            top = int(np.argmax(denoised))
            if denoised[top] > hottest[0]:
                hottest = (float(denoised[top]), chrom, (lo + top) * bin_size + bin_size // 2)
            if chrom in inputs.truth_chroms:
                _add_truth(view, read(s.truth), denoised, None if centres is None else centres[lo:hi])
        view.hottest.append(hottest)
    return view


def _bin_chunks(length: int, bin_size: int) -> list[tuple[int, int]]:
    """(first, end) bins of the pieces one chromosome is read in, so memory does not follow its length."""
    total = -(-length // bin_size)
    return [(lo, min(lo + GENOME_PASS_CHUNK_BINS, total)) for lo in range(0, total, GENOME_PASS_CHUNK_BINS)]


def _log_edges(path: str) -> np.ndarray:
    import pyBigWig

    with pyBigWig.open(path) as bw:
        top = float(bw.header().get("maxVal") or 0.0)
    return np.linspace(0.0, np.log1p(max(top, 1e-6)) * 1.0001, HIST_BINS + 1)


def _add_truth(view: Overview, truth: np.ndarray, denoised: np.ndarray, centres: np.ndarray | None):
    """Add one chunk of bins; with regions, a bin counts when its centre base is where the truth is defined."""
    if centres is not None:
        denoised, truth = denoised[centres], truth[centres]
    view.truth_bins += truth.size
    view.truth_sum += float(truth.sum())
    view.vs_truth.add(denoised, truth)
    log_denoised, log_truth = np.log1p(np.maximum(denoised, 0)), np.log1p(np.maximum(truth, 0))
    view.vs_truth_log.add(log_denoised, log_truth)
    view.histogram += np.histogram2d(log_denoised, log_truth, bins=view.edges)[0].astype(np.int64)


def _score(inputs: Inputs, settings: Settings) -> tuple[dict[str, dict], list[str]]:
    """``evaluate`` of the shallow input and the denoised track against the truth (none without a truth)."""
    s, scores, notes = inputs.sample, {}, []
    if not s.truth:
        return scores, notes
    common = dict(truth=s.truth, truth_peaks=s.truth_peaks, regions=s.regions, chroms=inputs.truth_chroms,
                  extend=settings.extend)
    noisy = _scored_or_note(inputs.noisy_bigwig, notes, "shallow input",
                            model_units="both" if settings.cpm else "none", per_chrom=False, **common)
    # MACS3 on the shallow input: its peaks for F1, the shallow coverage as its score (MACS3's pileup is that).
    macs3 = (_scored_or_note(inputs.noisy_bigwig, notes, "shallow input", peaks=s.shallow_peaks,
                             model_units="both" if settings.cpm else "none", per_chrom=False, **common)
             if s.shallow_peaks else None)
    denoised = _scored_or_note(s.denoised, notes, "denoised", peakprob=s.peakprob, peaks=s.peaks,
                               model_units="truth" if settings.cpm else "none", **common)
    scores.update({k: v for k, v in (("shallow input", noisy), ("MACS3 on the shallow input", macs3),
                                     ("denoised", denoised)) if v})
    return scores, notes


def _scored_or_note(track: str, notes: list[str], name: str, **kwargs) -> dict | None:
    """evaluate(track, ...), or None with a note when the track itself is empty where the truth is scored.

    A model that predicts nothing still deserves a report saying so; any other
    bad input (truth, regions, peaks) stops the report as usual.
    """
    try:
        return evaluate(track, **kwargs)
    except InputError as err:
        if err.path != track:
            raise
        notes.append(f"The {name} track is not scored: {err.problem}.")
        return None


# ---------------------------------------------------------------- sections

def _summary_section(inputs: Inputs, view: Overview) -> Section:
    n_peaks = _n_peaks(inputs)
    peak_bp = sum(covered_bases(p, inputs.sizes[c]) for c, p in inputs.called.items() if c in inputs.sizes)
    genome_bp = sum(inputs.sizes.values())
    peaks = (f"{n_peaks:,} called, covering {peak_bp:,} bp ({100 * peak_bp / genome_bp:.2f} % of the genome)"
             if n_peaks else "no peaks called")
    rows = [
        ("chromosomes", f"{len(inputs.sizes)} ({_short_list(inputs.sizes)}), {genome_bp:,} bp"),
        ("peaks", peaks),
        ("bins with peak probability >= 0.5", f"{view.probable_bins:,} of {view.bins:,}"),
        ("mean denoised signal per bin", f"{view.denoised_sum / max(view.bins, 1):.4g}"),
        ("Pearson, denoised vs shallow input (25 bp bins)", metrics.format_metric(view.vs_noisy.pearson())),
    ]
    if inputs.n_insertions is not None:
        rows.insert(1, ("insertions in the shallow input", f"{inputs.n_insertions:,}"))
    if "model" in inputs.provenance:
        rows.insert(0, ("model", _model_name(inputs.provenance)))
    library = inputs.provenance.get("library")
    if isinstance(library, dict) and {"insertions", "sequence_bp"} <= set(library):
        rows.insert(2, ("library insertions (denoise scaled by)", _library_depth(library)))
    empty = [c for c in inputs.sizes if c not in view.with_data]
    if empty:
        rows.append(("chromosomes without data (no panels)", _short_list(empty)))
    body = table(rows) + heading("Inputs") + table(inputs.paths.items(), header=["input", "file"])
    return Section("summary", "Summary", body)


def _short_list(names, limit: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def _metrics_section(scores: dict[str, dict], notes: list[str], baselines: dict[str, dict], cpm: bool) -> Section:
    rows = dict(baselines)
    rows.update({f"{name} (this sample)": result["overall"] for name, result in scores.items()})
    problems = Markup("").join(paragraph(n, strong=True) for n in notes)
    if not rows:
        return Section("metrics", "Metrics",
                       problems or paragraph("No truth and no baselines given: nothing to score against."))
    units = "model units (coverage at 1 insertion per 20 bp)" if cpm else "the tracks' own units"
    note = paragraph(f"Per base, as AtacWorks defines them; MSE in {units}; 'undefined' where a class is absent. "
                     "seed_window_mse: the seed's MSE over the centre 1024 bins (25 bp) of tiled 4096-bin windows.")
    body = problems + note + _metric_table(rows)
    if "denoised" in scores:
        body += heading("Denoised, per chromosome") + _metric_table(scores["denoised"]["per_chrom"])
    return Section("metrics", "Metrics", body)


def _metric_table(columns: dict[str, dict]):
    """One row per metric, one column per method (or chromosome): few columns fit a page."""
    names = [m for m in METRIC_ORDER if any(m in c for c in columns.values())]
    names += sorted({m for c in columns.values() for m in c} - set(names) - {"scored_bases"})
    body = [(name, *(metrics.format_metric(c.get(name), 4) for c in columns.values())) for name in names]
    return table(body, header=["metric", *columns])


def _strongest_section(loci: list[Locus], tracks: Tracks, peaks_called: bool) -> Section:
    if peaks_called:
        return _loci_section("strongest", "Strongest peaks", loci, tracks,
                             "The called peaks with the highest signal (centred on the summit).")
    return _loci_section("strongest", "Strongest signal (no peaks called)", loci, tracks,
                         "No peaks called: the loci with the highest denoised value instead.")


def _loci_section(anchor: str, title: str, loci: list[Locus], tracks: Tracks, note: str) -> Section:
    if not loci:
        return Section(anchor, title, paragraph("No locus to show: no chromosome has data."))
    shown = paragraph("Loci: " + "; ".join(str(locus) for locus in loci) + ".")
    return Section(anchor, title, paragraph(note) + png(loci_figure(loci, tracks), f"{title} panels") + shown)


def _scatter_section(inputs: Inputs, view: Overview) -> Section | None:
    if not inputs.sample.truth:
        return None
    if view.histogram is None or view.histogram.sum() == 0:
        return Section("scatter", "Denoised vs truth", paragraph("No scored bin."))
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(5.5, 5))
    x_edges, y_edges = view.edges
    counts = np.ma.masked_equal(view.histogram.T, 0)
    mesh = ax.pcolormesh(x_edges, y_edges, counts, norm=LogNorm(vmin=1, vmax=counts.max()), cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="25 bp bins")
    top = min(x_edges[-1], y_edges[-1])
    ax.plot([0, top], [0, top], color="0.5", linewidth=0.8, linestyle="--")
    ax.set(xlabel="log(1 + denoised)", ylabel="log(1 + truth)", title=f"{view.vs_truth.n:,} bins")
    fig.tight_layout()
    text = paragraph(f"Pearson over these bins: {metrics.format_metric(view.vs_truth.pearson())} "
                     f"(of log values: {metrics.format_metric(view.vs_truth_log.pearson())}).")
    return Section("scatter", "Denoised vs truth", text + png(fig, "denoised vs truth 2D histogram"))


def _provenance_section(inputs: Inputs) -> Section:
    """What made the tracks (whatever keys the provenance has) and what made this page."""
    beside = provenance_beside(inputs.sample.denoised)
    if inputs.provenance:
        source = os.fspath(beside) if beside.is_file() else "given to the report"
        body = paragraph(f"What made the tracks ({source}):") + table(_flatten(inputs.provenance))
    else:
        body = paragraph(f"No provenance given, and none beside the denoised track ({beside.name}).")
    return Section("provenance", "Provenance", body + heading("This report") + table(_report_software()))


def _flatten(value, key: str = "") -> list[tuple[str, str]]:
    """Nested dicts as 'outer / inner' rows; lists of plain values joined; anything else as compact JSON."""
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flatten(v, f"{key} / {k}" if key else str(k))]
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return [(key, ", ".join(map(str, value)) or "none")]
    if isinstance(value, list):
        return [row for k, v in enumerate(value, start=1) for row in _flatten(v, f"{key} {k}")]
    text = "null" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)
    if len(text) > LONG_VALUE:  # e.g. the contract's per-chromosome sequence digests: the file has them whole
        text = f"{text[:LONG_VALUE]}... ({len(text):,} characters)"
    return [(key, text)]


def _report_software() -> list[tuple[str, str]]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from atacdenoise import __version__

    rows = [("atacdenoise", __version__), ("python", platform.python_version())]
    for name in ("numpy", "pyBigWig", "matplotlib", "markdown", "jinja2"):
        try:
            rows.append((name, version(name)))
        except PackageNotFoundError:
            rows.append((name, "not installed"))
    return rows


def _search_section(history: list[dict] | None, summary: dict | None, work: Path) -> Section | None:
    if history is None:
        return None
    from atacdenoise.search.history import plot_search

    if not history:
        return Section("search", "Architecture search", paragraph("The search has no finished candidate yet."))
    plot_search(work / "search.png", history)
    body = png_bytes((work / "search.png").read_bytes(), "NASH search curve and model size")
    if summary:
        keys = ("best_val_loss", "best_val_pearson", "best_val_auprc", "best_parameters", "iterations_finished",
                "candidates_trained", "done", "device")
        body += table([(k, _plain(summary.get(k))) for k in keys if k in summary])
    return Section("search", "Architecture search (NASH)", body)


def _plain(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "undefined" if value is None else str(value)


def _card_section(card: str | None) -> Section | None:
    return None if card is None else Section("card", "Model card", Markup(markdown_to_html(card)))


# ---------------------------------------------------------------- across samples

def _sample_row(inputs: Inputs, view: Overview, scores: dict[str, dict]) -> dict[str, str]:
    """One sample's row of the table across samples: depth, peaks, agreement, QC and metrics when there are any."""
    p = inputs.provenance
    row = {"sample": inputs.sample.name,
           "insertions (shallow input)": _count(inputs.n_insertions),
           "library insertions (denoise)": _count(_library_insertions(p)),
           "model": _model_name(p),
           "peaks called": f"{_n_peaks(inputs):,}" if _n_peaks(inputs) else "none",
           "Pearson vs shallow input": metrics.format_metric(view.vs_noisy.pearson())}
    row.update({f"QC {k}": _plain(inputs.qc[k]) for k in QC_KEYS if k in inputs.qc})
    for name, result in scores.items():
        for metric in ("pearson", "auprc", "peak_f1"):
            if metric in result["overall"]:
                row[f"{metric} ({name})"] = metrics.format_metric(result["overall"][metric])
    return row


def _library_depth(library: dict) -> str:
    """The depth ``denoise`` measured or was given, as its provenance records it (``tracks.depth``)."""
    left_out = [f"{what} {library[key]:,.0f}" for what, key in (("mitochondrial", "mitochondrial"),
                                                               ("pile-ups", "pileups")) if library.get(key)]
    return (f"{library['insertions']:,.0f} over {library['sequence_bp'] / 1e6:,.1f} Mb "
            f"({library.get('how', 'measured')}; {1000 * library['insertions'] / library['sequence_bp']:.3g} per kb"
            + (f"; left out: {', '.join(left_out)}" if left_out else "") + ")")


def _library_insertions(provenance: dict):
    """The library depth ``denoise`` scaled by: ``library.insertions`` as it writes it, or a plain ``library_size``."""
    library = provenance.get("library")
    if isinstance(library, dict) and "insertions" in library:
        return library["insertions"]
    return provenance.get("library_size")


def _count(value) -> str:
    return f"{int(value):,}" if isinstance(value, (int, float)) else "-"


def _model_name(provenance: dict) -> str:
    """'name (version 3, alias champion)' from the provenance, as far as it goes; '-' without a model."""
    model = provenance.get("model")
    if model is None:
        return "-"
    version = provenance.get("model_version", provenance.get("version"))
    alias = provenance.get("model_alias", provenance.get("alias"))
    details = []
    if version is not None:
        details.append(f"version {version}")
    if alias is not None:
        details.append(f"alias {alias}")
    return f"{model} ({', '.join(details)})" if details else str(model)


def _samples_section(rows: list[dict[str, str]]) -> Section:
    """One row per sample; a column appears when any sample has a value for it."""
    columns = [c for c in dict.fromkeys(k for row in rows for k in row)
               if any(row.get(c, "-") != "-" for row in rows)]
    body = table([[row.get(c, "-") for c in columns] for row in rows], header=columns)
    note = paragraph("Metrics against the truth (per base, as in each sample's Metrics section) where a sample has "
                     "one; '-' where a value does not apply.")
    return Section("samples", "Samples", note + body)
