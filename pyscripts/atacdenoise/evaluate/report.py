"""``atacdenoise report``: one self-contained HTML page about a denoised sample.

Sections: a summary (peaks called, agreement with the shallow input), the
metric table (against a truth and baselines, when given), genome-browser
panels at the strongest peaks and at random loci, a denoised-vs-truth 2D
histogram, the NASH search curve and model-size growth, and the model card.
Figures are matplotlib (Agg) PNGs embedded as base64, the style sheet is
inline: the file opens anywhere, offline, and can be mailed as is.

Everything is read chromosome by chromosome at 25 bp bins; only the loci
shown and per-chromosome sums are kept. A non-bigWig shallow input (BAM,
insertions, fragments) is first binned into a temporary bigWig so that every
track is read the same way.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.evaluate import metrics
from atacdenoise.evaluate.evaluate import METRIC_ORDER, evaluate
from atacdenoise.io.atomic import atomic_path
from atacdenoise.io.bigwig import bigwig_chrom_sizes, read_bigwig
from atacdenoise.io.chromsizes import check_shared_chroms, read_chrom_sizes
from atacdenoise.io.narrowpeak import Peaks, interval_mask, read_peaks
from atacdenoise.tracks.binning import bigwig_bins, summarise_bins

HIST_BINS = 120          # cells per axis of the denoised-vs-truth 2D histogram
TRACK_COLOURS = {"noisy": "#7f7f7f", "denoised": "#1f77b4", "peak probability": "#2ca02c", "truth": "#d62728"}


@dataclass
class Locus:
    chrom: str
    start: int
    end: int
    label: str


@dataclass
class Inputs:
    """Everything the sections need, checked before any work is done."""

    denoised: str
    peakprob: str
    noisy: str                       # a bigWig (the shallow input, or its binned coverage)
    sizes: dict[str, int]            # chromosomes shown, in chrom-sizes order
    called: dict[str, Peaks]
    truth: str | None = None
    truth_chroms: list[str] = field(default_factory=list)
    truth_peaks: dict[str, Peaks] = field(default_factory=dict)
    regions: dict[str, Peaks] | None = None
    paths: dict[str, str | None] = field(default_factory=dict)


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
) -> str:
    """Write the report to ``output`` (atomically) and return its path.

    Bad input raises InputError and leaves no file (the page is written only when complete).
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    say = _Progress(progress)
    baseline_rows = _read_baselines(baselines)
    history, summary = _read_search(search_dir)
    card = _read_text(model_card) if model_card else None
    with tempfile.TemporaryDirectory(prefix="atacdenoise-report.") as work:
        inputs = _check_inputs(denoised, peakprob, peaks, noisy, chrom_sizes, truth, truth_peaks, regions, chroms,
                               fmt, extend, bin_size, Path(work), say)
        say("summary and genome-wide pass")
        overview = _genome_pass(inputs, bin_size)
        sections = [_model_note(model_note), _summary_section(inputs, overview)]
        say("metrics")
        sections.append(_metrics_section(inputs, baseline_rows, cpm, extend))
        say("strongest loci")
        strong = _strongest_loci(inputs, overview, n_strong, locus_bp)
        sections.append(_loci_section("strongest", "Strongest peaks", strong, inputs, bin_size,
                                      "The called peaks with the highest signal (centred on the summit)."))
        say("random loci")
        random_loci = _random_loci(inputs, n_random, locus_bp, seed)
        sections.append(_loci_section("random", "Random loci", random_loci, inputs, bin_size,
                                      f"Drawn uniformly (seed {seed}) over "
                                      f"{'the truth regions' if inputs.regions else 'the genome'}: "
                                      "what a typical stretch looks like."))
        say("denoised vs truth")
        sections.append(_scatter_section(inputs, overview))
        say("search")
        sections.append(_search_section(history, summary, Path(work)))
        say("model card")
        sections.append(_card_section(card))
    page = _page(Path(denoised).name, [s for s in sections if s])
    with atomic_path(output) as tmp:
        tmp.write_text(page, encoding="utf-8")
    say(f"wrote {output}")
    return os.fspath(output)


class _Progress:
    """One line per section on stderr, with the seconds since the start."""

    def __init__(self, enabled: bool):
        self.enabled, self.started = enabled, time.perf_counter()

    def __call__(self, what: str) -> None:
        if self.enabled:
            print(f"report: [{time.perf_counter() - self.started:6.1f} s] {what}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- inputs

def _check_inputs(denoised, peakprob, peaks, noisy, chrom_sizes, truth, truth_peaks, regions, chroms, fmt, extend,
                  bin_size, work: Path, say) -> Inputs:
    sizes = _shown_chroms(read_chrom_sizes(chrom_sizes), denoised, chroms, chrom_sizes)
    _check_lengths(peakprob, sizes)
    called = read_peaks(peaks)
    if called:
        check_shared_chroms(peaks, called, sizes)
    inputs = Inputs(os.fspath(denoised), os.fspath(peakprob), "", sizes, called,
                    paths={"denoised": os.fspath(denoised), "peakprob": os.fspath(peakprob), "peaks": os.fspath(peaks),
                           "noisy": os.fspath(noisy), "truth": _fspath(truth), "truth peaks": _fspath(truth_peaks),
                           "regions": _fspath(regions)})
    if truth is not None:
        inputs.truth = os.fspath(truth)
        truth_sizes = bigwig_chrom_sizes(truth)
        check_shared_chroms(truth, truth_sizes, sizes)
        inputs.truth_chroms = [c for c in sizes if c in truth_sizes]
        _check_lengths(truth, {c: sizes[c] for c in inputs.truth_chroms})
        inputs.truth_peaks = read_peaks(truth_peaks) if truth_peaks else {}
        inputs.regions = read_peaks(regions) if regions else None
    elif truth_peaks or regions:
        raise InputError(truth_peaks or regions, "--truth-peaks and --regions need --truth")
    say("binning the shallow input")
    inputs.noisy = _noisy_bigwig(noisy, sizes, fmt, extend, bin_size, work)
    return inputs


def _fspath(path) -> str | None:
    return None if path is None else os.fspath(path)


def _shown_chroms(sizes: dict[str, int], denoised, chroms: list[str] | None, chrom_sizes) -> dict[str, int]:
    """Chromosomes of the chrom sizes that the denoised track has (or those asked for)."""
    in_track = bigwig_chrom_sizes(denoised)
    check_shared_chroms(denoised, in_track, sizes)
    shown = {c: n for c, n in sizes.items() if c in in_track}
    if chroms:
        missing = [c for c in chroms if c not in shown]
        if missing:
            raise InputError(chrom_sizes, f"chromosome(s) {', '.join(missing)} not in both the chrom sizes and "
                                          f"{denoised}")
        shown = {c: shown[c] for c in chroms}
    _check_lengths(denoised, shown)
    return shown


def _check_lengths(path, sizes: dict[str, int]) -> None:
    in_track = bigwig_chrom_sizes(path)
    for chrom, length in sizes.items():
        if chrom not in in_track:
            raise InputError(path, f"lacks chromosome {chrom}")
        if in_track[chrom] != length:
            raise InputError(path, f"{chrom} is {in_track[chrom]:,} bp here but {length:,} bp in the chrom sizes")


def _noisy_bigwig(noisy, sizes: dict[str, int], fmt: str, extend: int, bin_size: int, work: Path) -> str:
    """The shallow input as a bigWig: itself, or its binned coverage written to ``work``."""
    from atacdenoise.io.bigwig import write_bigwig
    from atacdenoise.io.reads import detect_format, iter_insertions
    from atacdenoise.tracks.binning import coverage_bins

    if (detect_format(noisy) if fmt == "auto" else fmt) == "bigwig":
        _check_lengths(noisy, sizes)
        return os.fspath(noisy)
    # Text inputs come in file order, a bigWig needs chrom-sizes order: park each chromosome on disk meanwhile.
    parked = {}
    for k, (chrom, positions) in enumerate(iter_insertions(noisy, sizes, fmt)):
        parked[chrom] = work / f"noisy.{k}.npy"
        np.save(parked[chrom], coverage_bins(positions, sizes[chrom], bin_size=bin_size, extend=extend))

    def tracks():
        for chrom, length in sizes.items():
            yield chrom, (np.load(parked[chrom]) if chrom in parked else np.zeros(-(-length // bin_size), np.float32))

    path = work / "noisy.bw"
    write_bigwig(path, sizes, tracks(), bin_size)
    return os.fspath(path)


def _read_baselines(path) -> dict[str, dict]:
    """``{method: {metric: number or null}}`` from JSON."""
    if path is None:
        return {}
    try:
        rows = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON ({err})") from None
    valid = isinstance(rows, dict) and all(
        isinstance(row, dict) and all(v is None or isinstance(v, (int, float)) for v in row.values())
        for row in rows.values())
    if not valid:
        raise InputError(path, 'expected {"method": {"metric": number or null, ...}, ...}')
    return rows


def _read_search(search_dir) -> tuple[list[dict] | None, dict | None]:
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


def _read_text(path) -> str:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(path, "not a UTF-8 text file") from None


# ---------------------------------------------------------------- reading tracks

def _bins(path: str, chrom: str, start: int, end: int, bin_size: int) -> np.ndarray:
    """Mean value per ``bin_size`` bin of ``chrom[start:end]`` (missing data is 0)."""
    return summarise_bins(read_bigwig(path, chrom, start, end), bin_size, "mean")


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
    probable_bins: int = 0                        # peak probability >= 0.5
    vs_noisy: _Moments = field(default_factory=_Moments)
    vs_truth: _Moments = field(default_factory=_Moments)
    vs_truth_log: _Moments = field(default_factory=_Moments)
    hottest: list = field(default_factory=list)   # (value, chrom, base) of each chromosome's maximum bin
    histogram: np.ndarray | None = None
    edges: tuple | None = None


def _genome_pass(inputs: Inputs, bin_size: int) -> Overview:
    view = Overview()
    if inputs.truth:
        view.edges = (_log_edges(inputs.denoised), _log_edges(inputs.truth))
        view.histogram = np.zeros((HIST_BINS, HIST_BINS), np.int64)
    for chrom, length in inputs.sizes.items():
        denoised = bigwig_bins(inputs.denoised, chrom, length, bin_size)
        view.bins += denoised.size
        view.denoised_sum += float(denoised.sum())
        view.probable_bins += int((bigwig_bins(inputs.peakprob, chrom, length, bin_size) >= 0.5).sum())
        view.vs_noisy.add(denoised, bigwig_bins(inputs.noisy, chrom, length, bin_size))
        top = int(np.argmax(denoised))
        view.hottest.append((float(denoised[top]), chrom, top * bin_size + bin_size // 2))
        if chrom in inputs.truth_chroms:
            _add_truth(view, inputs, chrom, length, denoised, bin_size)
    return view


def _log_edges(path: str) -> np.ndarray:
    import pyBigWig

    with pyBigWig.open(path) as bw:
        top = float(bw.header().get("maxVal") or 0.0)
    return np.linspace(0.0, np.log1p(max(top, 1e-6)) * 1.0001, HIST_BINS + 1)


def _add_truth(view: Overview, inputs: Inputs, chrom: str, length: int, denoised: np.ndarray, bin_size: int):
    truth = bigwig_bins(inputs.truth, chrom, length, bin_size)
    if inputs.regions is not None:  # a bin counts when its centre base is where the truth is defined
        centres = interval_mask(inputs.regions.get(chrom), length)[bin_size // 2::bin_size]
        denoised, truth = denoised[:centres.size][centres], truth[:centres.size][centres]
    view.vs_truth.add(denoised, truth)
    log_denoised, log_truth = np.log1p(np.maximum(denoised, 0)), np.log1p(np.maximum(truth, 0))
    view.vs_truth_log.add(log_denoised, log_truth)
    view.histogram += np.histogram2d(log_denoised, log_truth, bins=view.edges)[0].astype(np.int64)


# ---------------------------------------------------------------- loci

def _strongest_loci(inputs: Inputs, view: Overview, n: int, width: int) -> list[Locus]:
    """The ``n`` strongest called peaks, at least one locus width apart; the hottest bins when none were called."""
    candidates = []
    for chrom, peaks in inputs.called.items():
        if chrom not in inputs.sizes:
            continue
        centres = peaks.starts + (peaks.summits if peaks.summits is not None else (peaks.ends - peaks.starts) // 2)
        candidates += [(float(s), chrom, int(c)) for s, c in zip(peaks.signal, centres)]
    kind = "peak signal"
    if not candidates:
        candidates, kind = view.hottest, "highest denoised value (no peaks called)"
    loci: list[Locus] = []
    for value, chrom, centre in sorted(candidates, key=lambda t: -t[0]):
        if len(loci) == n:
            break
        if any(l.chrom == chrom and abs((l.start + l.end) // 2 - centre) < width for l in loci):
            continue
        loci.append(_locus(chrom, centre, width, inputs.sizes[chrom], f"{kind} {value:.3g}"))
    return loci


def _random_loci(inputs: Inputs, n: int, width: int, seed: int) -> list[Locus]:
    """Centres drawn uniformly over the truth regions (when given) or the shown chromosomes."""
    rng = np.random.default_rng(seed)
    if inputs.regions:
        spans = [(c, s, e) for c, p in inputs.regions.items() if c in inputs.truth_chroms
                 for s, e in zip(p.starts.tolist(), p.ends.tolist())]
    else:
        spans = [(c, 0, length) for c, length in inputs.sizes.items()]
    if not spans:
        return []
    lengths = np.array([e - s for _, s, e in spans], np.float64)
    loci = []
    for index in sorted(rng.choice(len(spans), size=n, p=lengths / lengths.sum())):
        chrom, start, end = spans[index]
        loci.append(_locus(chrom, int(rng.integers(start, end)), width, inputs.sizes[chrom], "random"))
    return loci


def _locus(chrom: str, centre: int, width: int, length: int, label: str) -> Locus:
    width = min(width, length)
    start = int(np.clip(centre - width // 2, 0, length - width))
    return Locus(chrom, start, start + width, label)


def _loci_section(anchor: str, title: str, loci: list[Locus], inputs: Inputs, bin_size: int, note: str) -> str:
    if not loci:
        return _section(anchor, title, "<p>No locus to show.</p>")
    figure = _loci_figure(loci, inputs, bin_size)
    return _section(anchor, title, f"<p>{html.escape(note)}</p>\n{_png(figure, f'{title} panels')}")


def _loci_figure(loci: list[Locus], inputs: Inputs, bin_size: int):
    """Genome-browser panels: one column per locus, one row per track, peaks as boxes at the bottom."""
    import matplotlib.pyplot as plt

    tracks = {"noisy": inputs.noisy, "denoised": inputs.denoised, "peak probability": inputs.peakprob}
    if inputs.truth:
        tracks["truth"] = inputs.truth
    n_cols = min(len(loci), 4)
    n_blocks = -(-len(loci) // n_cols)
    rows = len(tracks) + 1
    fig, axes = plt.subplots(rows * n_blocks, n_cols, figsize=(4 * n_cols, 1.1 * rows * n_blocks + 0.6),
                             squeeze=False, sharex="col", gridspec_kw={"height_ratios": ([1] * len(tracks) + [0.5])
                                                                                       * n_blocks})
    for k, locus in enumerate(loci):
        block, col = divmod(k, n_cols)
        column = axes[block * rows:(block + 1) * rows, col]
        _draw_locus(column, locus, tracks, inputs, bin_size, first_col=col == 0)
    for k in range(len(loci), n_blocks * n_cols):  # unused cells of the last block
        for ax in axes[(n_blocks - 1) * rows:, k % n_cols]:
            ax.set_visible(False)
    fig.tight_layout(h_pad=0.2, w_pad=0.8)
    return fig


def _draw_locus(column, locus: Locus, tracks: dict, inputs: Inputs, bin_size: int, first_col: bool) -> None:
    x_kb = (locus.start + (np.arange(-(-(locus.end - locus.start) // bin_size)) + 0.5) * bin_size) / 1000
    for ax, (name, path) in zip(column, tracks.items()):
        values = _bins(path, locus.chrom, locus.start, locus.end, bin_size) if (
            name != "truth" or locus.chrom in inputs.truth_chroms) else np.zeros(x_kb.size)
        ax.fill_between(x_kb, values, step="mid", color=TRACK_COLOURS[name], linewidth=0)
        ax.set_ylim(0, 1.0 if name == "peak probability" else max(float(values.max()) * 1.1, 1e-3))
        ax.tick_params(labelsize=7)
        ax.set_ylabel(name if first_col else "", fontsize=8)
    column[0].set_title(f"{locus.chrom}:{locus.start:,}-{locus.end:,}\n{locus.label}", fontsize=8)
    _draw_peaks(column[-1], locus, inputs, first_col)


def _draw_peaks(ax, locus: Locus, inputs: Inputs, first_col: bool) -> None:
    lanes = [("called", inputs.called, "#1f77b4", 1)]
    if inputs.truth:
        lanes.append(("truth", inputs.truth_peaks, "#d62728", 0))
    for name, peak_sets, colour, lane in lanes:
        peaks = peak_sets.get(locus.chrom)
        if peaks is None:
            continue
        inside = (peaks.ends > locus.start) & (peaks.starts < locus.end)
        for start, end in zip(peaks.starts[inside], peaks.ends[inside]):
            ax.broken_barh([(max(start, locus.start) / 1000, (min(end, locus.end) - max(start, locus.start)) / 1000)],
                           (lane + 0.1, 0.8), color=colour)
    ax.set_ylim(0, 2)
    ax.set_yticks([0.5, 1.5], ["truth" if inputs.truth else "", "called"] if first_col else ["", ""], fontsize=7)
    ax.set_xlim(locus.start / 1000, locus.end / 1000)
    ax.set_xlabel("kb", fontsize=7)
    ax.tick_params(labelsize=7)


# ---------------------------------------------------------------- sections

def _summary_section(inputs: Inputs, view: Overview) -> str:
    n_peaks = sum(len(p.starts) for c, p in inputs.called.items() if c in inputs.sizes)
    peak_bp = sum(int(interval_mask(p, inputs.sizes[c]).sum()) for c, p in inputs.called.items() if c in inputs.sizes)
    genome_bp = sum(inputs.sizes.values())
    rows = [
        ("chromosomes", f"{len(inputs.sizes)} ({_short_list(inputs.sizes)}), {genome_bp:,} bp"),
        ("peaks called", f"{n_peaks:,} covering {peak_bp:,} bp ({100 * peak_bp / genome_bp:.2f} % of the genome)"),
        ("bins with peak probability >= 0.5", f"{view.probable_bins:,} of {view.bins:,}"),
        ("mean denoised signal per bin", f"{view.denoised_sum / max(view.bins, 1):.4g}"),
        ("Pearson, denoised vs shallow input (25 bp bins)", metrics.format_metric(view.vs_noisy.pearson())),
    ]
    files = [(name, path) for name, path in inputs.paths.items() if path]
    body = _table(["", ""], rows) + "<h3>Inputs</h3>\n" + _table(["input", "file"], files)
    return _section("summary", "Summary", body)


def _short_list(names, limit: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def _metrics_section(inputs: Inputs, baselines: dict[str, dict], cpm: bool, extend: int) -> str:
    rows, notes, per_chrom = dict(baselines), [], ""
    if inputs.truth:
        common = dict(truth=inputs.truth, truth_peaks=inputs.paths["truth peaks"], regions=inputs.paths["regions"],
                      chroms=inputs.truth_chroms, extend=extend)
        noisy = _scored_or_note(inputs.noisy, notes, "shallow input", model_units="both" if cpm else "none",
                                per_chrom=False, **common)
        sample = _scored_or_note(inputs.denoised, notes, "denoised", peakprob=inputs.peakprob,
                                 peaks=inputs.paths["peaks"], model_units="truth" if cpm else "none", **common)
        if noisy:
            rows["shallow input (this sample)"] = noisy["overall"]
        if sample:
            rows["denoised (this sample)"] = sample["overall"]
            per_chrom = "<h3>Denoised, per chromosome</h3>\n" + _metric_table(sample["per_chrom"])
    problems = "".join(f"<p><strong>{html.escape(n)}</strong></p>\n" for n in notes)
    if not rows:
        return _section("metrics", "Metrics", problems or "<p>No truth and no baselines given: nothing to score "
                                                          "against.</p>")
    units = "model units (coverage at 1 insertion per 20 bp)" if cpm else "the tracks' own units"
    note = (f"<p>Per base, as AtacWorks defines them; MSE in {units}; 'undefined' where a class is absent. "
            "seed_window_mse: the seed's MSE over the centre 1024 bins (25 bp) of tiled 4096-bin windows.</p>")
    return _section("metrics", "Metrics", problems + note + _metric_table(rows) + per_chrom)


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


def _metric_table(columns: dict[str, dict]) -> str:
    """One row per metric, one column per method (or chromosome): few columns fit a page."""
    names = [m for m in METRIC_ORDER if any(m in c for c in columns.values())]
    names += sorted({m for c in columns.values() for m in c} - set(names) - {"scored_bases"})
    body = [(name, *(metrics.format_metric(c.get(name), 4) for c in columns.values())) for name in names]
    return _table(["metric", *columns], body)


def _scatter_section(inputs: Inputs, view: Overview) -> str:
    if not inputs.truth:
        return ""
    if view.histogram is None or view.histogram.sum() == 0:
        return _section("scatter", "Denoised vs truth", "<p>No scored bin.</p>")
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
    text = (f"<p>Pearson over these bins: {metrics.format_metric(view.vs_truth.pearson())} "
            f"(of log values: {metrics.format_metric(view.vs_truth_log.pearson())}).</p>")
    return _section("scatter", "Denoised vs truth", text + _png(fig, "denoised vs truth 2D histogram"))


def _search_section(history: list[dict] | None, summary: dict | None, work: Path) -> str:
    if history is None:
        return ""
    from atacdenoise.search.history import plot_search

    if not history:
        return _section("search", "Architecture search", "<p>The search has no finished candidate yet.</p>")
    plot_search(work / "search.png", history)
    image = base64.b64encode((work / "search.png").read_bytes()).decode("ascii")
    body = (f'<img alt="NASH search curve and model size" src="data:image/png;base64,{image}">\n')
    if summary:
        keys = ("best_val_loss", "best_val_pearson", "best_val_auprc", "best_parameters", "iterations_finished",
                "candidates_trained", "done", "device")
        body += _table(["", ""], [(k, _plain(summary.get(k))) for k in keys if k in summary])
    return _section("search", "Architecture search (NASH)", body)


def _plain(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "undefined" if value is None else str(value)


def _model_note(note: str | None) -> str:
    """One line at the top saying which model made the tracks (e.g. that it is the demo's)."""
    return "" if not note else f'<p class="note"><strong>Model:</strong> {html.escape(note)}</p>'


def _card_section(card: str | None) -> str:
    return "" if card is None else _section("card", "Model card", markdown_to_html(card))


# ---------------------------------------------------------------- HTML

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #1f77b4; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; } pre { background: #f4f4f4; padding: 0.6em; overflow-x: auto; }
nav a { margin-right: 1em; }
"""


def _page(name: str, sections: list[str]) -> str:
    from atacdenoise import __version__

    anchors = re.findall(r'<section id="([^"]+)"><h2>(.*?)</h2>', "\n".join(sections))
    nav = " ".join(f'<a href="#{a}">{t}</a>' for a, t in anchors)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>atacdenoise report: {html.escape(name)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<h1>atacdenoise report: {html.escape(name)}</h1>\n<nav>{nav}</nav>\n" + "\n".join(sections)
            + f"\n<footer><p>atacdenoise {__version__}, {time.strftime('%Y-%m-%d %H:%M')}</p></footer>\n"
              "</body>\n</html>\n")


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>\n{body}\n</section>'


def _table(header: list[str], rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}\n</table>\n"


def _cell(value) -> str:
    text = str(value)
    numeric = text == "undefined" or re.fullmatch(r"-?[\d.,]+(e[-+]?\d+)?", text) is not None
    return f'<td class="num">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>"


def _png(fig, alt: str) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


# ---------------------------------------------------------------- markdown

BULLET = re.compile(r"\s*[-*+]\s+")


def markdown_to_html(text: str) -> str:
    """Just enough markdown for a model card: headings, paragraphs, lists, fenced code, tables, inline code/bold.

    Links are shown as text with the address in brackets, never as live links,
    so the page refers to nothing outside itself.
    """
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            out.append("<pre><code>" + html.escape("\n".join(lines[i + 1:end])) + "</code></pre>")
            i = end + 1
        elif m := re.match(r"(#{1,6})\s+(.*)", line):
            level = min(len(m.group(1)) + 2, 6)  # the card sits under the report's own h2
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|"):
            i = _md_table(lines, i, out)
        elif BULLET.match(line):
            items = []
            while i < len(lines) and BULLET.match(lines[i]):
                items.append(f"<li>{_inline(BULLET.sub('', lines[i], count=1))}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
        elif not line.strip():
            i += 1
        else:
            paragraph = []
            while i < len(lines) and lines[i].strip() and not re.match(r"(#{1,6}\s|```|\s*\||\s*[-*+]\s)", lines[i]):
                paragraph.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
    return "\n".join(out)


def _md_table(lines: list[str], i: int, out: list[str]) -> int:
    rows = []
    while i < len(lines) and lines[i].lstrip().startswith("|"):
        cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
        if not all(re.fullmatch(r":?-{2,}:?", c) for c in cells):  # skip the |---|---| rule
            rows.append(cells)
        i += 1
    if rows:
        head = "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
        out.append(f"<table><tr>{head}</tr>{body}</table>")
    return i


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![*\w])\*([^*]+)\*(?!\*)", r"<em>\1</em>", text)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", text)
