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
    args = parser.parse_args(["report", "--denoised", str(sample["denoised"]), "--peakprob", str(sample["peakprob"]),
                              "--peaks", str(sample["peaks"]), "--noisy", str(sample["noisy"]),
                              "--chrom-sizes", str(sample["chrom_sizes"]), "--output", str(output),
                              "--n-strong", "1", "--n-random", "1", "--locus-bp", "5000", "--quiet"])
    args.func(args)
    assert output.read_text().count("data:image/png;base64,") == 2


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
