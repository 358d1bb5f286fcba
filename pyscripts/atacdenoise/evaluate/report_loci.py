"""Genome-browser panels for the report: which loci to show, and drawing them.

A locus is shown only on a chromosome with data (an all-zero chrM, say, gives
an empty panel that tells nothing). Random loci are drawn uniformly, but a
draw whose reference track never rises above twice its genome-wide mean is
passed over for the next: a stretch of pure background drawn at full scale
looks like a solid block and hides what the tracks do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atacdenoise.io.bigwig import read_bigwig
from atacdenoise.io.narrowpeak import Peaks
from atacdenoise.tracks.binning import summarise_bins

TRACK_COLOURS = {"noisy": "#7f7f7f", "denoised": "#1f77b4", "peak probability": "#2ca02c", "truth": "#d62728"}
DRAWS_PER_LOCUS = 25  # random draws tried per random locus before a flat one is accepted


@dataclass
class Locus:
    chrom: str
    start: int
    end: int
    label: str

    def __str__(self) -> str:
        return f"{self.chrom}:{self.start:,}-{self.end:,} ({self.label})"


@dataclass
class Tracks:
    """What the panels draw for one sample; ``truth_chroms`` are where the truth has data."""

    bigwigs: dict[str, str]                  # panel name -> bigWig, in drawing order
    called: dict[str, Peaks]
    truth_peaks: dict[str, Peaks] | None     # None: no truth given
    truth_chroms: list[str]
    genes: dict | None = None                # chrom -> io.genome.Intervals, when a gene annotation is given
    bin_size: int = 25


def bins(path: str, chrom: str, start: int, end: int, bin_size: int) -> np.ndarray:
    """Mean value per ``bin_size`` bin of ``chrom[start:end]`` (missing data is 0)."""
    return summarise_bins(read_bigwig(path, chrom, start, end), bin_size, "mean")


def make_locus(chrom: str, centre: int, width: int, length: int, label: str) -> Locus:
    width = min(width, length)
    start = int(np.clip(centre - width // 2, 0, length - width))
    return Locus(chrom, start, start + width, label)


def strongest_loci(called: dict[str, Peaks], hottest: list, sizes: dict[str, int], n: int,
                   width: int) -> list[Locus]:
    """The ``n`` strongest called peaks, at least one locus width apart; the hottest bins when none were called.

    ``hottest``: (value, chrom, base) of each chromosome's highest denoised bin; only chromosomes in ``sizes``
    (those with data) are used.
    """
    candidates = []
    for chrom, peaks in called.items():
        if chrom not in sizes:
            continue
        centres = peaks.starts + (peaks.summits if peaks.summits is not None else (peaks.ends - peaks.starts) // 2)
        candidates += [(float(s), chrom, int(c)) for s, c in zip(peaks.signal, centres)]
    kind = "peak signal"
    if not candidates:
        candidates = [h for h in hottest if h[1] in sizes and h[0] > 0]
        kind = "highest denoised value (no peaks called)"
    loci: list[Locus] = []
    for value, chrom, centre in sorted(candidates, key=lambda t: -t[0]):
        if len(loci) == n:
            break
        if any(l.chrom == chrom and abs((l.start + l.end) // 2 - centre) < width for l in loci):
            continue
        loci.append(make_locus(chrom, centre, width, sizes[chrom], f"{kind} {value:.3g}"))
    return loci


def random_loci(spans: list[tuple[str, int, int]], sizes: dict[str, int], n: int, width: int, seed: int,
                reference, threshold: float) -> list[Locus]:
    """``n`` non-overlapping loci with centres drawn uniformly over ``spans`` (chrom, start, end), sorted by position.

    A draw where ``reference(locus)`` (that locus's values of the truth, or of
    the denoised track without one) stays below ``threshold`` is skipped; after
    ``DRAWS_PER_LOCUS * n`` draws the skipped ones fill what is left.
    """
    if not spans or n <= 0:
        return []
    rng = np.random.default_rng(seed)
    lengths = np.array([e - s for _, s, e in spans], np.float64)
    chosen, flat = [], []
    for index in rng.choice(len(spans), size=DRAWS_PER_LOCUS * n, p=lengths / lengths.sum()):
        chrom, start, end = spans[index]
        locus = make_locus(chrom, int(rng.integers(start, end)), width, sizes[chrom], "random")
        if any(l.chrom == locus.chrom and l.start < locus.end and locus.start < l.end for l in chosen + flat):
            continue  # two panels of the same stretch show nothing new
        (chosen if float(reference(locus).max(initial=0.0)) >= threshold else flat).append(locus)
        if len(chosen) == n:
            break
    chosen += flat[:n - len(chosen)]
    return sorted(chosen, key=lambda l: (list(sizes).index(l.chrom), l.start))


# ---------------------------------------------------------------- drawing

def loci_figure(loci: list[Locus], tracks: Tracks):
    """One column per locus (four per block), one row per track, then peak boxes, then genes when given."""
    import matplotlib.pyplot as plt

    lanes = [1.0] * len(tracks.bigwigs) + [0.5] + ([0.6] if tracks.genes is not None else [])
    rows = len(lanes)
    n_cols = min(len(loci), 4)
    n_blocks = -(-len(loci) // n_cols)
    fig, axes = plt.subplots(rows * n_blocks, n_cols, figsize=(4 * n_cols, 1.1 * sum(lanes) * n_blocks + 0.9),
                             squeeze=False, sharex="col", gridspec_kw={"height_ratios": lanes * n_blocks})
    for k, locus in enumerate(loci):
        block, col = divmod(k, n_cols)
        column = axes[block * rows:(block + 1) * rows, col]
        _draw_locus(column, locus, tracks, first_col=col == 0)
    for k in range(len(loci), n_blocks * n_cols):  # unused cells of the last block
        for ax in axes[(n_blocks - 1) * rows:, k % n_cols]:
            ax.set_visible(False)
    fig.tight_layout(h_pad=0.2, w_pad=0.8)
    return fig


def _draw_locus(column, locus: Locus, tracks: Tracks, first_col: bool) -> None:
    n = -(-(locus.end - locus.start) // tracks.bin_size)
    x_kb = (locus.start + (np.arange(n) + 0.5) * tracks.bin_size) / 1000
    for ax, (name, path) in zip(column, tracks.bigwigs.items()):
        has_data = name != "truth" or locus.chrom in tracks.truth_chroms
        values = bins(path, locus.chrom, locus.start, locus.end, tracks.bin_size) if has_data else np.zeros(n)
        if name == "truth":  # a line: a background level drawn filled reads as a solid block
            ax.step(x_kb, values, where="mid", color=TRACK_COLOURS[name], linewidth=1.0)
        else:
            ax.fill_between(x_kb, values, step="mid", color=TRACK_COLOURS[name], linewidth=0)
        ax.set_ylim(0, 1.0 if name == "peak probability" else max(float(values.max(initial=0.0)) * 1.1, 1e-3))
        ax.tick_params(labelsize=7)
        ax.set_ylabel(name if first_col else "", fontsize=8)
    column[0].set_title(f"{locus.chrom}:{locus.start:,}-{locus.end:,}\n{locus.label}", fontsize=8)
    _draw_peaks(column[len(tracks.bigwigs)], locus, tracks, first_col)
    if tracks.genes is not None:
        _draw_genes(column[-1], locus, tracks.genes.get(locus.chrom), first_col)
    column[-1].set_xlim(locus.start / 1000, locus.end / 1000)
    column[-1].set_xlabel("kb", fontsize=7)


def _draw_peaks(ax, locus: Locus, tracks: Tracks, first_col: bool) -> None:
    lanes = [("called", tracks.called, "#1f77b4", 1)]
    if tracks.truth_peaks is not None:
        lanes.append(("truth", tracks.truth_peaks, "#d62728", 0))
    for _, peak_sets, colour, lane in lanes:
        peaks = peak_sets.get(locus.chrom)
        if peaks is None:
            continue
        inside = (peaks.ends > locus.start) & (peaks.starts < locus.end)
        for start, end in zip(peaks.starts[inside], peaks.ends[inside]):
            ax.broken_barh([(max(start, locus.start) / 1000, (min(end, locus.end) - max(start, locus.start)) / 1000)],
                           (lane + 0.1, 0.8), color=colour)
    if not tracks.called:  # say so rather than leave a lane that looks like a drawing failure
        ax.text(0.5, 0.75, "no peaks called", transform=ax.transAxes, ha="center", va="center", fontsize=7,
                color="0.4")
    ax.set_ylim(0, 2)
    labels = ["truth" if tracks.truth_peaks is not None else "", "called"]
    ax.set_yticks([0.5, 1.5], labels if first_col else ["", ""], fontsize=7)
    ax.tick_params(labelsize=7)


def _draw_genes(ax, locus: Locus, genes, first_col: bool) -> None:
    """Gene bodies as bars, plus strand on top, minus below, with an arrow at each gene start (TSS)."""
    ax.set_ylim(0, 2)
    ax.set_yticks([0.5, 1.5], ["genes -", "genes +"] if first_col else ["", ""], fontsize=7)
    ax.tick_params(labelsize=7)
    if genes is None:
        return
    inside = (genes.ends > locus.start) & (genes.starts < locus.end)
    for start, end, strand in zip(genes.starts[inside], genes.ends[inside], genes.strands[inside]):
        y = 0.5 if strand < 0 else 1.5
        left, right = max(start, locus.start) / 1000, min(end, locus.end) / 1000
        ax.plot([left, right], [y, y], color="#444444", linewidth=3, solid_capstyle="butt")
        tss = end - 1 if strand < 0 else start
        if locus.start <= tss < locus.end:
            ax.plot(tss / 1000, y, marker="<" if strand < 0 else ">", color="#000000", markersize=5)
