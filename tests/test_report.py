"""`atacdenoise report`: one self-contained HTML page, checked as text and as rendered by headless Chromium."""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from atacdenoise.errors import InputError
from atacdenoise.evaluate.report import make_report, markdown_to_html
from atacdenoise.io.bigwig import read_bigwig, write_bigwig
from atacdenoise.io.chromsizes import read_chrom_sizes
from atacdenoise.io.narrowpeak import read_peaks, write_narrowpeak
from atacdenoise.search.history import write_history, write_json

CHROMIUM = Path("/usr/bin/chromium")
BIN = 25
CARD = """# Test model card

A *small* model with `code` and **bold**, see [the paper](https://example.org/paper).

| metric | value |
|---|---|
| Pearson | 0.9 |

```
x = "<script>alert(1)</script>"
```

- first item
- second item
"""


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Path]:
    """A simulated sample and stand-ins for what `denoise` and `search` would leave."""
    from atacdenoise.tracks.simulate import simulate

    folder = tmp_path_factory.mktemp("report")
    sim = {k: Path(v) for k, v in simulate(folder / "sim", n_chroms=1, chrom_length=300_000, n_fragments=20_000,
                                           fastq=False).items()}
    sizes = read_chrom_sizes(sim["chrom_sizes"])
    truth_peaks = read_peaks(sim["truth_peaks"])
    rng = np.random.default_rng(0)

    def per_bin(chrom: str, values_from_truth) -> np.ndarray:
        n_bins = -(-sizes[chrom] // BIN)
        if chrom not in truth_peaks:  # chrM: no truth, an empty track (as denoise leaves it)
            return np.zeros(n_bins, np.float32)
        truth = np.resize(read_bigwig(sim["truth_accessibility"], chrom), n_bins * BIN).reshape(n_bins, BIN)
        return values_from_truth(truth.mean(axis=1), chrom)

    def peak_prob(_, chrom):
        bins = np.zeros(-(-sizes[chrom] // BIN), np.float32)
        for start, end in zip(truth_peaks[chrom].starts, truth_peaks[chrom].ends):
            bins[start // BIN:end // BIN] = 0.9
        return bins

    write_bigwig(folder / "d.bw", sizes, ((c, per_bin(c, lambda t, c: t * rng.gamma(4, 0.25, t.size)))
                                          for c in sizes), BIN)
    write_bigwig(folder / "p.bw", sizes, ((c, per_bin(c, peak_prob)) for c in sizes), BIN)
    write_narrowpeak(folder / "p.narrowPeak", list(truth_peaks.values()))
    search = folder / "search"
    search.mkdir()
    rows = [{"iteration": it, "child": ch, "morphisms": [], "parameters": 1000 * (it + 1) + ch,
             "train_loss": 1.0, "val_loss": 1.0 / (it + 1) + 0.01 * ch, "val_pearson": 0.5, "val_auprc": None,
             "seconds": 1.0, "is_parent": ch == 0 and it > 0, "chosen": ch == 1} for it in range(4) for ch in range(3)]
    write_history(search / "history.jsonl", rows)
    write_json(search / "summary.json", {"best_val_loss": 0.26, "best_val_pearson": 0.5, "best_val_auprc": None,
                                         "best_parameters": 4001, "iterations_finished": 3, "done": True})
    (folder / "card.md").write_text(CARD)
    (folder / "baselines.json").write_text(json.dumps({"MACS2 shallow": {"pearson": 0.7, "auprc": None},
                                                       "Gaussian smoothing": {"pearson": 0.75, "auprc": 0.5}}))
    return {"denoised": folder / "d.bw", "peakprob": folder / "p.bw", "peaks": folder / "p.narrowPeak",
            "noisy": sim["bam"], "chrom_sizes": sim["chrom_sizes"], "truth": sim["truth_accessibility"],
            "truth_peaks": sim["truth_peaks"], "search_dir": search, "model_card": folder / "card.md",
            "baselines": folder / "baselines.json", "folder": folder}


@pytest.fixture(scope="module")
def full_report(sample, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("out") / "sim.report.html"
    make_report(sample["denoised"], sample["peakprob"], sample["peaks"], sample["noisy"], sample["chrom_sizes"],
                output, truth=sample["truth"], truth_peaks=sample["truth_peaks"], search_dir=sample["search_dir"],
                model_card=sample["model_card"], baselines=sample["baselines"], progress=False)
    return output


def test_report_is_self_contained_with_every_section(full_report):
    page = full_report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page), "refers to something outside itself"
    assert "<script" not in page.replace("&lt;script", "")
    for anchor in ("summary", "metrics", "strongest", "random", "scatter", "search", "card"):
        assert f'<section id="{anchor}">' in page, anchor
        assert f'href="#{anchor}"' in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4  # two loci panels, the 2D histogram, the search curve
    assert all(len(image) > 5_000 for image in images)
    for method in ("MACS2 shallow", "Gaussian smoothing", "denoised (this sample)", "shallow input (this sample)"):
        assert method in page
    for metric in ("pearson", "spearman", "auprc", "peak_f1", "seed_window_mse"):
        assert f"<td>{metric}</td>" in page
    assert "undefined" in page                     # the baselines' null AUPRC


def test_report_renders_the_model_card_without_live_links(full_report):
    card = full_report.read_text().split('<section id="card">')[1]
    assert "<h3>Test model card</h3>" in card
    assert "<em>small</em>" in card and "<strong>bold</strong>" in card and "<code>code</code>" in card
    assert "<th>metric</th>" in card and "<td>0.9</td>" in card
    assert "&lt;script&gt;" in card and "<li>second item</li>" in card
    assert "the paper (https://example.org/paper)" in card


def test_progress_line_per_section_and_no_truth_sections(sample, tmp_path, caplog):
    """Without a truth: no scatter, no truth track; the shallow input read as an insertions BED."""
    from atacdenoise.io.reads import iter_insertions, write_insertions_bed

    sizes = read_chrom_sizes(sample["chrom_sizes"])
    insertions = tmp_path / "noisy.bed.gz"
    write_insertions_bed(insertions, iter_insertions(sample["noisy"], sizes))
    output = tmp_path / "plain.html"
    with caplog.at_level(logging.INFO, logger="atacdenoise.evaluate.report"):
        make_report(sample["denoised"], sample["peakprob"], sample["peaks"], insertions, sample["chrom_sizes"],
                    output, n_strong=2, n_random=3, seed=5)
    page = output.read_text()
    assert '<section id="scatter">' not in page and '<section id="search">' not in page
    assert "nothing to score against" in page
    stderr = caplog.text
    for step in ("summary", "metrics", "strongest loci", "random loci", "wrote"):
        assert re.search(rf"report: \[ *[\d.]+ s\] .*{step}", stderr), step
    agreement = re.search(r"Pearson, denoised vs shallow input \(25 bp bins\)</th><td class=\"num\">([\d.]+)", page)
    assert agreement and 0.2 < float(agreement.group(1)) < 1.0  # the stand-in denoised track follows the reads


@pytest.mark.parametrize("case", ["baselines", "length", "search", "card"])
def test_bad_input_names_the_file_and_leaves_no_output(sample, tmp_path, case):
    args = dict(denoised=sample["denoised"], peakprob=sample["peakprob"], peaks=sample["peaks"],
                noisy=sample["noisy"], chrom_sizes=sample["chrom_sizes"], output=tmp_path / "out" / "r.html",
                progress=False)
    bad = tmp_path / "bad"
    if case == "baselines":
        bad.write_text('{"method": {"pearson": "high"}}')
        args["baselines"] = bad
    elif case == "length":
        write_bigwig(bad, {"chr1": 299_000}, [("chr1", np.ones(299_000 // BIN, np.float32))], BIN)
        args["peakprob"] = bad
    elif case == "search":
        bad.mkdir()
        args["search_dir"] = bad
    else:
        args["model_card"] = bad
    with pytest.raises(InputError) as err:
        make_report(**args)
    assert err.value.path == str(bad)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cli_parser_passes_every_option(sample, tmp_path):
    from atacdenoise.cli_evaluate import add_report_parser

    parser = argparse.ArgumentParser()
    add_report_parser(parser.add_subparsers(dest="command", required=True))
    output = tmp_path / "cli.html"
    genes, provenance = tmp_path / "genes.bed", tmp_path / "provenance.json"
    genes.write_text("chr1\t1000\t5000\tg\t0\t+\n")
    provenance.write_text('{"model": "m.onnx", "model_version": 2}')
    args = parser.parse_args(["report", "--denoised", str(sample["denoised"]), "--peakprob", str(sample["peakprob"]),
                              "--peaks", str(sample["peaks"]), "--noisy", str(sample["noisy"]),
                              "--chrom-sizes", str(sample["chrom_sizes"]), "--output", str(output),
                              "--n-strong", "1", "--n-random", "1", "--locus-bp", "5000", "--quiet",
                              "--genes", str(genes), "--provenance", str(provenance)])
    args.func(args)
    page = output.read_text()
    assert page.count("data:image/png;base64,") == 2
    assert '<th scope="row">model</th><td>m.onnx (version 2)</td>' in page


def test_markdown_converter_escapes_html():
    rendered = markdown_to_html("## Title <b>\n\ntext with <i>tags</i> & more\n")
    assert rendered.splitlines() == ["<h4>Title &lt;b&gt;</h4>", "<p>text with &lt;i&gt;tags&lt;/i&gt; &amp; more</p>"]


def test_chromium_renders_the_report(full_report, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (Debian package 'chromium'); cannot check the rendered page")
    import matplotlib.image

    shot = tmp_path / "shot.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2400",
                    full_report.resolve().as_uri()], check=True, capture_output=True, timeout=60)
    pixels = (matplotlib.image.imread(shot)[..., :3] * 255).round().astype(np.int32)
    assert pixels.shape[:2] == (2400, 1280)
    not_white = (pixels < 245).any(axis=2)
    assert not_white.mean() > 0.05
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # plots, not just text
    # The loci panels below the tables are drawn: the denoised blue and the truth red both show up.
    lower = pixels[800:]
    for colour in ((0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28)):
        assert (np.abs(lower - colour).sum(axis=2) < 30).sum() > 500, colour


def test_an_all_zero_denoised_track_is_reported_not_fatal(sample, tmp_path):
    sizes = read_chrom_sizes(sample["chrom_sizes"])
    zeros = tmp_path / "zeros.bw"
    write_bigwig(zeros, sizes, ((c, np.zeros(-(-n // BIN), np.float32)) for c, n in sizes.items()), BIN)
    output = tmp_path / "zeros.html"
    make_report(zeros, sample["peakprob"], sample["peaks"], sample["noisy"], sample["chrom_sizes"], output,
                truth=sample["truth"], truth_peaks=sample["truth_peaks"], n_strong=1, n_random=1, progress=False)
    metrics_section = output.read_text().split('<section id="metrics">')[1].split("</section>")[0]
    assert "The denoised track is not scored" in metrics_section and "empty" in metrics_section
    assert "shallow input (this sample)" in metrics_section and "denoised (this sample)" not in metrics_section


def test_markdown_keeps_a_wrapped_list_item_whole():
    """The hand-written renderer split a wrapped item into an item and a stray paragraph."""
    rendered = markdown_to_html("- **Architecture**: a long item that\n  wraps onto a second line\n- second\n")
    assert rendered.count("<li>") == 2
    assert re.search(r"<li><strong>Architecture</strong>: a long item that\s+wraps onto a second line</li>", rendered)
    assert "<p>" not in rendered
    # As on GitHub, a list right under a paragraph line is a list, not '- ' lines of the paragraph.
    rendered = markdown_to_html("Where to get them:\n- `tss`: genes\n- `ctcf`: sites\n\n```\n- code\n```\n")
    assert rendered.count("<li>") == 2 and "- code" in rendered


def test_bundled_model_cards_render_without_stray_list_markers():
    for card in sorted((Path(__file__).resolve().parents[1] / "registry" / "models").glob("*.md")):
        text = re.sub(r"<pre>.*?</pre>", "", markdown_to_html(card.read_text()), flags=re.S)
        assert "<li>" in text and not re.search(r"(^|\n)\s*[-*] ", text), card.name


def test_key_value_tables_have_no_empty_header_row(full_report):
    page = full_report.read_text()
    assert not re.search(r"<th>\s*</th>", page)
    assert not re.search(r"<tr>\s*</tr>", page)
    summary = page.split('<section id="summary">')[1].split("</section>")[0]
    assert '<th scope="row">peaks</th><td>12 called, covering' in summary


def loci_captions(page: str, anchor: str) -> list[str]:
    section = page.split(f'<section id="{anchor}">')[1].split("</section>")[0]
    return re.findall(r"(chr\w+):[\d,]+-[\d,]+ \(", section)


def test_no_peaks_called_is_said_and_empty_chromosomes_get_no_panel(sample, tmp_path):
    """chrM has no data in the sample: with no peaks the strongest loci come from the denoised track, never chrM."""
    empty_peaks = tmp_path / "none.narrowPeak"
    empty_peaks.write_text("")
    output = tmp_path / "nopeaks.html"
    make_report(sample["denoised"], sample["peakprob"], empty_peaks, sample["noisy"], sample["chrom_sizes"], output,
                truth=sample["truth"], truth_peaks=sample["truth_peaks"], n_strong=4, n_random=6, locus_bp=5_000,
                progress=False)
    page = output.read_text()
    assert "no peaks called" in page and not re.search(r"(?<!no )peaks called", page, re.I)
    assert "Strongest signal (no peaks called)" in page
    for anchor in ("strongest", "random"):
        captions = loci_captions(page, anchor)
        assert captions and set(captions) == {"chr1"}, (anchor, captions)
    assert re.search(r"chromosomes without data \(no panels\)</th><td>chrM</td>", page)


def test_random_loci_pass_over_flat_background():
    """A locus whose reference never rises above the threshold is drawn only when nothing better turned up."""
    from atacdenoise.evaluate.report_loci import random_loci

    sizes = {"chr1": 1_000_000}
    has_signal = lambda locus: np.array([5.0 if locus.start < 100_000 else 1.0])  # noqa: E731
    loci = random_loci([("chr1", 0, 1_000_000)], sizes, 2, 10_000, 0, has_signal, threshold=2.0)
    assert len(loci) == 2 and all(locus.start < 100_000 for locus in loci)
    assert loci[0].end <= loci[1].start  # no two panels of one stretch
    flat = random_loci([("chr1", 0, 1_000_000)], sizes, 2, 10_000, 0, lambda locus: np.ones(1), threshold=2.0)
    assert len(flat) == 2


def test_truth_is_drawn_as_a_line_and_genes_get_a_lane(sample, tmp_path):
    from atacdenoise.evaluate.report_loci import Locus, Tracks, loci_figure
    from atacdenoise.io.genome import read_intervals

    gff = tmp_path / "genes.gff3"
    gff.write_text("##gff-version 3\n"
                   "chr1\tsim\tgene\t2001\t6000\t.\t+\t.\tID=a\n"
                   "chr1\tsim\tgene\t7001\t9000\t.\t-\t.\tID=b\n"
                   "chr1\tsim\tmRNA\t2001\t6000\t.\t+\t.\tID=a.1\n")
    sizes = read_chrom_sizes(sample["chrom_sizes"])
    bigwigs = {"denoised": str(sample["denoised"]), "truth": str(sample["truth"])}
    loci = [Locus("chr1", 0, 10_000, "test")]
    plain = loci_figure(loci, Tracks(bigwigs, {}, {}, ["chr1"]))
    with_genes = loci_figure(loci, Tracks(bigwigs, {}, {}, ["chr1"], read_intervals(gff, sizes, genes_only=True)))
    assert len(with_genes.axes) == len(plain.axes) + 1
    truth_ax = with_genes.axes[1]
    assert truth_ax.lines and not truth_ax.collections  # a step line, not a filled area
    gene_ax = with_genes.axes[-1]
    bodies = [line for line in gene_ax.lines if len(line.get_xdata()) == 2]
    assert sorted(tuple(line.get_xdata()) for line in bodies) == [(2.0, 6.0), (7.0, 9.0)]
    assert sorted(line.get_marker() for line in gene_ax.lines if len(line.get_xdata()) == 1) == ["<", ">"]


def test_provenance_beside_the_denoised_track_and_given(sample, tmp_path):
    import shutil

    denoised = tmp_path / "s1.denoised.bw"
    shutil.copy(sample["denoised"], denoised)
    (tmp_path / "s1.provenance.json").write_text(json.dumps({
        "model": "models:/atac-denoiser@champion", "model_version": 3, "onnx_sha256": "ab12" * 16,
        "library": {"insertions": 37600, "how": "measured"}, "inputs": {"input": "/data/s1.bam"},
        "contract": {"sequence_md5": "x" * 1000}, "software": {"onnxruntime": "1.20.1"}}))
    output = tmp_path / "prov.html"
    make_report(denoised, sample["peakprob"], sample["peaks"], sample["noisy"], sample["chrom_sizes"], output,
                n_strong=1, n_random=1, progress=False, provenance={"alias": "champion"})
    section = output.read_text().split('<section id="provenance">')[1].split("</section>")[0]
    for key, value in (("model", "models:/atac-denoiser@champion"), ("model_version", "3"),
                       ("onnx_sha256", "ab12" * 16), ("inputs / input", "/data/s1.bam"),
                       ("software / onnxruntime", "1.20.1"), ("alias", "champion"), ("library / insertions", "37600"),
                       ("contract / sequence_md5", "x" * 160 + "... (1,000 characters)")):
        row = rf'<th scope="row">{re.escape(key)}</th><td( class="num")?>{re.escape(value)}</td>'
        assert re.search(row, section), key
    assert "s1.provenance.json" in section and '<th scope="row">atacdenoise</th>' in section
    summary = output.read_text().split('<section id="summary">')[1].split("</section>")[0]
    assert '<th scope="row">model</th><td>models:/atac-denoiser@champion (version 3, alias champion)</td>' in summary


def test_several_samples_get_one_summary_row_each(sample, tmp_path):
    """Through the CLI's --samplesheet: a table across samples first, then each sample's sections."""
    from atacdenoise.cli import main

    qc = tmp_path / "a.qc.json"
    qc.write_text(json.dumps({"n_insertions": 37600, "tss_enrichment": 7.5, "tss_profile": [1, 2, 3]}))
    folder = sample["folder"]
    sheet = tmp_path / "samples.csv"
    sheet.write_text("sample,denoised,peakprob,peaks,noisy,truth,truth_peaks,qc\n"
                     f"with truth,{sample['denoised']},{sample['peakprob']},{sample['peaks']},{sample['noisy']},"
                     f"{sample['truth']},{sample['truth_peaks']},a.qc.json\n"
                     f"plain,{folder / 'd.bw'},{folder / 'p.bw'},{folder / 'p.narrowPeak'},{sample['noisy']},,,\n")
    output = tmp_path / "two.html"
    assert main(["report", "--samplesheet", str(sheet), "--chrom-sizes", str(sample["chrom_sizes"]),
                 "--output", str(output), "--n-strong", "1", "--n-random", "1", "--quiet"]) == 0
    page = output.read_text()
    table = page.split('<section id="samples">')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    assert len(rows) == 3  # the header and one row per sample
    assert "<td>with truth</td>" in rows[1] and "<td>plain</td>" in rows[2]
    header = re.findall(r"<th>(.*?)</th>", rows[0])
    assert {"pearson (denoised)", "auprc (shallow input)", "QC tss_enrichment", "insertions (shallow input)"} \
        <= set(header)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[2])
    assert cells[header.index("pearson (denoised)")] == "-"  # no truth for this sample
    assert cells[header.index("insertions (shallow input)")] == "37,600"
    assert '<section id="s1-summary">' in page and '<section id="s2-metrics">' in page
    assert len(re.findall(r'<section id="s\d+-', page)) == page.count("<section id=") - 1  # all but 'samples'


def test_samplesheet_problems_name_the_file(sample, tmp_path):
    from atacdenoise.cli import main
    from atacdenoise.evaluate.report import read_report_samplesheet

    sheet = tmp_path / "bad.csv"
    sheet.write_text("sample,denoised,peaks,noisy\nx,a.bw,p.bed,n.bam\n")
    with pytest.raises(InputError, match="missing: peakprob") as err:
        read_report_samplesheet(sheet)
    assert err.value.path == str(sheet)
    assert main(["report", "--samplesheet", str(sheet), "--denoised", "d.bw", "--chrom-sizes",
                 str(sample["chrom_sizes"]), "--output", str(tmp_path / "x.html")]) == 2
    assert main(["report", "--chrom-sizes", str(sample["chrom_sizes"]), "--output", str(tmp_path / "x.html")]) == 2


def test_yeast_genes_from_gff3_make_the_gene_lane(shared_data, tmp_path):
    """The real GFF3 (sacCer3, gzip) through the genome channels' reader: bodies and TSS arrows in a locus."""
    from atacdenoise.evaluate.report_inputs import read_genes
    from atacdenoise.evaluate.report_loci import Locus, Tracks, loci_figure

    sizes = read_chrom_sizes(shared_data / "yeast" / "chrom.sizes")
    genes = read_genes(shared_data / "yeast" / "genes.gff3.gz", sizes)
    flat = tmp_path / "flat.bw"
    write_bigwig(flat, {"chrI": sizes["chrI"]}, [("chrI", np.ones(-(-sizes["chrI"] // BIN), np.float32))], BIN)
    figure = loci_figure([Locus("chrI", 0, 20_000, "yeast")], Tracks({"denoised": str(flat)}, {}, None, [], genes))
    gene_ax = figure.axes[-1]
    in_locus = int(((genes["chrI"].starts < 20_000)).sum())
    assert in_locus >= 5
    assert len([line for line in gene_ax.lines if len(line.get_xdata()) == 2]) == in_locus


def test_macs3_on_the_shallow_input_is_a_metrics_column(sample, tmp_path):
    """--shallow-peaks: the baseline a lab would run (MACS3 on the shallow library) scored beside the denoised track."""
    output = tmp_path / "macs3.html"
    make_report(sample["denoised"], sample["peakprob"], sample["peaks"], sample["noisy"], sample["chrom_sizes"],
                output, truth=sample["truth"], truth_peaks=sample["truth_peaks"], shallow_peaks=sample["peaks"],
                n_strong=1, n_random=1, progress=False)
    metrics = output.read_text().split('<section id="metrics">')[1].split("</section>")[0]
    header = re.search(r"<tr>(.*?)</tr>", metrics, re.S).group(1)
    assert "MACS3 on the shallow input (this sample)" in header
    f1_row = re.search(r"<td>peak_f1</td>(.*?)</tr>", metrics, re.S).group(1)
    assert "undefined" not in f1_row.split("</td>")[1]  # the MACS3 column has an F1 (its peaks were given)


def test_genome_pass_in_small_chunks_equals_one_read_per_chromosome(sample, tmp_path, monkeypatch):
    """The genome pass reads each chromosome in pieces (memory bounded by GENOME_PASS_CHUNK_BINS): the page's
    numbers, loci and 2D histogram do not depend on the piece size."""
    from atacdenoise.evaluate import report

    def page(chunk_bins: int, name: str) -> str:
        monkeypatch.setattr(report, "GENOME_PASS_CHUNK_BINS", chunk_bins)
        output = tmp_path / name
        make_report(sample["denoised"], sample["peakprob"], sample["peaks"], sample["noisy"], sample["chrom_sizes"],
                    output, truth=sample["truth"], truth_peaks=sample["truth_peaks"], regions=sample["truth_peaks"],
                    progress=False)
        # Timings and the footer's time of making (the two pages may straddle a minute) differ.
        return re.sub(r"\d+(\.\d+)? s\b|generated [^<]*|\d{4}-\d\d-\d\d \d\d:\d\d", "", output.read_text())

    whole, pieces = page(10**9, "whole.html"), page(997, "pieces.html")
    assert "Pearson, denoised vs shallow input" in whole
    assert pieces == whole
