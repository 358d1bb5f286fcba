"""`atacdenoise qc`: numbers checked on libraries built so the answer is known, MultiQC read by the real
multiqc, bad input refused in one line, and the real libraries (skipped without ../shared/data)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pysam
import pytest

from atacdenoise.errors import InputError
from atacdenoise.evaluate.qc import MQC_SECTIONS, compute_qc, run_qc

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
YEAST = DATA / "yeast"
SIZES = {"chr1": 100_000, "chr2": 50_000, "chrM": 16_000}


def realdata(test):
    return pytest.mark.skipif(not DATA.exists(), reason=f"real data folder {DATA} is absent")(test)


def write_sizes(folder: Path, sizes: dict[str, int] = SIZES) -> Path:
    path = folder / "chrom.sizes"
    path.write_text("".join(f"{c}\t{n}\n" for c, n in sizes.items()))
    return path


def write_insertions(path: Path, rows: list[tuple[str, int]]) -> Path:
    """BED6 insertions, grouped by chromosome in first-seen order and sorted within it."""
    order = {c: i for i, c in reversed(list(enumerate(c for c, _ in rows)))}
    rows = sorted(rows, key=lambda r: (order[r[0]], r[1]))
    path.write_text("".join(f"{c}\t{p}\t{p + 1}\t.\t0\t+\n" for c, p in rows))
    return path


def write_gtf(path: Path, genes: list[tuple[str, int, str]]) -> Path:
    """Genes of 1 kb whose TSS (0-based) is the given base on the given strand."""
    lines = []
    for i, (chrom, tss, strand) in enumerate(genes):
        start, end = (tss + 1, tss + 1_000) if strand == "+" else (tss - 998, tss + 1)
        lines.append(f'{chrom}\ttest\tgene\t{start}\t{end}\t.\t{strand}\t.\tgene_id "g{i}";\n')
        lines.append(f'{chrom}\ttest\texon\t{start}\t{end}\t.\t{strand}\t.\tgene_id "g{i}";\n')
    path.write_text("".join(lines))
    return path


# ---------------------------------------------------------------- fragment lengths, duplicates, complexity

def test_fragment_lengths_duplicates_and_complexity_of_a_known_library(tmp_path):
    fragments = [  # chrom, start, end, count
        ("chr1", 1_000, 1_050, 1), ("chr1", 2_000, 2_050, 1), ("chr1", 3_000, 3_050, 1),
        ("chr1", 4_000, 4_180, 2),                         # one fragment read twice (count 2)
        ("chr1", 5_000, 5_180, 1), ("chr1", 5_000, 5_180, 1),  # ... or written twice
        ("chr1", 6_000, 7_200, 1),                         # longer than 1000
        ("chr2", 100, 400, 1),
        ("chrM", 10, 110, 1), ("chrM", 200, 300, 3),
    ]
    path = tmp_path / "lib.fragments.tsv"
    path.write_text("".join(f"{c}\t{s}\t{e}\tBC\t{n}\n" for c, s, e, n in fragments))
    qc = compute_qc(path, SIZES)
    hist = np.asarray(qc["fragment_length_histogram"])
    assert len(hist) == 1001
    expected = np.zeros(1001, int)
    for length, n in ((50, 3), (180, 4), (300, 1), (100, 4)):
        expected[length] = n
    np.testing.assert_array_equal(hist, expected)
    assert qc["fragments_longer_than_1000"] == 1 and qc["n_fragments"] == 13
    # 13 reads at 9 distinct fragments: read once 1000, 2000, 3000, 6000, chr2, chrM:10 (M1 = 6), twice 4000 and
    # 5000 (M2 = 2), three times chrM:200
    assert qc["nrf"] == pytest.approx(9 / 13) and qc["fraction_duplicates"] == pytest.approx(4 / 13)
    assert qc["pbc1"] == pytest.approx(6 / 9) and qc["pbc2"] == pytest.approx(6 / 2)
    assert qc["n_insertions"] == 26 and qc["fraction_chrM"] == pytest.approx(8 / 26)
    assert qc["duplicates_method"].startswith("identical fragment coordinates")


def write_paired_bam(path: Path, pairs: list[tuple[int, int, bool]], chrom: str = "chr1") -> Path:
    """Proper pairs of 20 bp reads covering ``[start, end)``, the duplicate flag on both mates when asked."""
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": chrom, "LN": 100_000}]}
    reads = []
    for i, (start, end, dup) in enumerate(pairs):
        for mate, (pos, flag, tlen) in enumerate(((start, 0x1 | 0x2 | 0x20 | 0x40, end - start),
                                                  (end - 20, 0x1 | 0x2 | 0x10 | 0x80, start - end))):
            read = pysam.AlignedSegment()
            read.query_name, read.flag = f"p{i}", flag | (0x400 if dup else 0)
            read.reference_id, read.reference_start, read.mapping_quality = 0, pos, 60
            read.cigarstring, read.query_sequence = "20M", "A" * 20
            read.next_reference_id, read.next_reference_start = 0, end - 20 if mate == 0 else start
            read.template_length = tlen
            reads.append(read)
    reads.sort(key=lambda r: r.reference_start)
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for read in reads:
            out.write(read)
    pysam.index(str(path))
    return path


def test_bam_duplicates_from_the_flag_and_from_coordinates(tmp_path):
    pairs = [(1_000, 1_200, False), (1_000, 1_200, True), (1_000, 1_200, True), (3_000, 3_100, False)]
    flagged = compute_qc(write_paired_bam(tmp_path / "flagged.bam", pairs), {"chr1": 100_000})
    assert flagged["duplicates_method"] == "duplicate flag (0x400)"
    assert flagged["fraction_duplicates"] == pytest.approx(4 / 8)  # reads: 4 of 8 flagged
    assert flagged["n_insertions"] == 4  # flagged reads are dropped from the insertions
    assert flagged["nrf"] == pytest.approx(2 / 4) and flagged["pbc1"] == pytest.approx(1 / 2)
    hist = np.asarray(flagged["fragment_length_histogram"])
    assert hist[200] == 1 and hist[100] == 1 and hist.sum() == 2  # kept fragments only, each once

    unflagged = [(s, e, False) for s, e, _ in pairs]
    by_coordinates = compute_qc(write_paired_bam(tmp_path / "unflagged.bam", unflagged), {"chr1": 100_000})
    assert by_coordinates["duplicates_method"].startswith("identical fragment coordinates")
    assert by_coordinates["fraction_duplicates"] == pytest.approx(2 / 4)  # fragments: 2 of 4 repeat one
    assert by_coordinates["n_insertions"] == 8


# ---------------------------------------------------------------- TSS enrichment

def test_tss_enrichment_high_when_insertions_pile_at_tss_and_one_when_uniform(tmp_path):
    sizes = write_sizes(tmp_path)
    genes = [("chr1", 10_000, "+"), ("chr1", 30_000, "-"), ("chr1", 60_000, "+"), ("chr2", 20_000, "-"),
             ("chr1", 500, "+")]  # too close to the chromosome start: skipped
    gtf = write_gtf(tmp_path / "genes.gtf", genes)
    uniform = [(c, p) for c, n in (("chr1", 100_000), ("chr2", 50_000)) for p in range(0, n, 2)]
    flat = compute_qc(write_insertions(tmp_path / "flat.bed", uniform), SIZES, gtf=gtf)
    assert flat["n_tss"] == 4
    assert flat["tss_enrichment"] == pytest.approx(1.0) and flat["tss_enrichment_centre"] == pytest.approx(1.0)
    # 40 more insertions 100 bp downstream of every TSS (strand-aware): the profile peaks at +100, far above 1
    piled = uniform + [(c, t + 100 if s == "+" else t - 100) for c, t, s in genes for _ in range(40)]
    qc = compute_qc(write_insertions(tmp_path / "piled.bed", piled), SIZES, gtf=gtf)
    profile = np.asarray(qc["tss_profile"])
    assert len(profile) == 4001 and int(np.argmax(profile)) == 2000 + 100
    # every TSS sees the uniform insertions at even offsets: flank mean 4 TSSs x 0.5 per base = 2
    assert profile[2100] == pytest.approx((4 * 40 + 4) / 2) and profile[2101] == 0
    # ENCODE: the 10 bp bin holding +100 has (4 x 5 + 160) / 10 per base over a noise of 2: 9
    assert qc["tss_enrichment"] == pytest.approx(9.0)
    assert qc["tss_enrichment_centre"] == pytest.approx(1.0)  # the pile lies outside the central 100 bp


def test_frip_and_chrM_on_a_constructed_library(tmp_path):
    rows = [("chr1", p) for p in (100, 150, 199, 200, 5_000, 5_010, 9_999)] + [("chr2", 7), ("chrM", 1), ("chrM", 2)]
    bed = write_insertions(tmp_path / "lib.bed", rows)
    peaks = tmp_path / "p.narrowPeak"
    # overlapping peaks count once (their union); [100, 200) holds 100,150,199; [5000, 5011) holds two; chrM is no
    # part of FRiP; a peak on a chromosome outside the chrom sizes is ignored
    peaks.write_text("chr1\t100\t180\tp1\t0\t.\t5\t-1\t-1\t-1\nchr1\t150\t200\tp2\t0\t.\t5\t-1\t-1\t-1\n"
                     "chr1\t5000\t5011\tp3\t0\t.\t5\t-1\t-1\t-1\nchrM\t0\t100\tp4\t0\t.\t5\t-1\t-1\t-1\n"
                     "chrUn\t0\t100\tp5\t0\t.\t5\t-1\t-1\t-1\n")
    qc = compute_qc(bed, SIZES, peaks=peaks)
    assert qc["n_insertions"] == 10 and qc["fraction_chrM"] == pytest.approx(0.2)
    assert qc["n_insertions_in_peaks"] == 5 and qc["frip"] == pytest.approx(5 / 8)
    assert qc["fragment_length_histogram"] is None and qc["fraction_duplicates"] is None


# ---------------------------------------------------------------- outputs: JSON, plots, MultiQC

def test_run_qc_writes_json_plots_and_multiqc_that_multiqc_reads(tmp_path):
    sizes = write_sizes(tmp_path)
    gtf = write_gtf(tmp_path / "genes.gtf", [("chr1", 10_000, "+"), ("chr1", 30_000, "-")])
    rng = np.random.default_rng(0)
    for sample in ("deep", "shallow"):
        starts = np.sort(rng.integers(0, 90_000, 3_000 if sample == "deep" else 500))
        lengths = rng.choice([60, 190, 380], len(starts))
        path = tmp_path / f"{sample}.fragments.tsv.gz"
        with gzip.open(path, "wt") as fh:
            fh.writelines(f"chr1\t{s}\t{s + n}\tBC\t1\n" for s, n in zip(starts, lengths))
        qc, written = run_qc(path, {"chr1": SIZES["chr1"]}, tmp_path / "mqc" / sample, gtf=gtf)
        assert len(written) == 1 + 2 + 3 and all(Path(w).exists() for w in written)
        assert json.loads((tmp_path / "mqc" / f"{sample}.qc.json").read_text())["n_insertions"] == qc["n_insertions"]
        for name in ("fragment_lengths.png", "tss_profile.png"):
            assert (tmp_path / "mqc" / f"{sample}.{name}").read_bytes()[:4] == b"\x89PNG"
    multiqc = shutil.which("multiqc")
    if multiqc is None:
        pytest.skip("multiqc is not installed (pip install -e '.[dev]')")
    out = tmp_path / "report"
    subprocess.run([multiqc, str(tmp_path / "mqc"), "-o", str(out), "--no-version-check", "-q"],
                   check=True, capture_output=True, timeout=600)
    data = json.loads((out / "multiqc_data" / "multiqc_data.json").read_text())
    text = json.dumps(data)
    for section in MQC_SECTIONS:
        assert section in text, section
    general = (out / "multiqc_data" / "multiqc_general_stats.txt").read_text().splitlines()
    header = general[0].split("\t")
    assert any("atacdenoise_qc_general-tss_enrichment" in h for h in header)
    assert {line.split("\t")[0] for line in general[1:]} == {"deep", "shallow"}
    assert (out / "multiqc_data" / f"multiqc_{MQC_SECTIONS[1]}_plot.txt").exists()
    assert (out / "multiqc_data" / f"multiqc_{MQC_SECTIONS[2]}_plot.txt").exists()


# ---------------------------------------------------------------- bad input: one line, exit 2

def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["atacdenoise", "qc", *map(str, args)], capture_output=True, text=True, timeout=120)


def bad_input_cases(tmp_path: Path) -> list[tuple[list, str]]:
    bed = write_insertions(tmp_path / "lib.bed", [("chr1", 5_000), ("chr1", 6_000)])
    sizes = write_sizes(tmp_path)
    other = write_gtf(tmp_path / "other.gtf", [("chrZ", 5_000, "+")])
    on_chr2 = write_gtf(tmp_path / "chr2.gtf", [("chr2", 5_000, "+")])
    exons_only = tmp_path / "exons.gtf"
    exons_only.write_text('chr1\ttest\texon\t100\t200\t.\t+\t.\tgene_id "g";\n')
    empty = tmp_path / "empty.bed"
    empty.write_text("")
    common = ["--chrom-sizes", sizes, "--out-prefix", tmp_path / "out" / "x"]
    return [
        (["--input", bed, "--gtf", tmp_path / "missing.gtf", *common], "missing.gtf: gene annotation"),
        (["--input", bed, "--gtf", other, *common], "other.gtf: none of its chromosomes (chrZ)"),
        (["--input", bed, "--gtf", on_chr2, *common], "chr2.gtf: no TSS on the input's chromosomes"),
        (["--input", bed, "--gtf", exons_only, *common], "exons.gtf: GTF has no 'gene' records"),
        (["--input", empty, *common], "empty.bed: file is empty"),
        (["--input", tmp_path / "nope.bam", *common], "nope.bam: file does not exist"),
    ]


def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path):
    for argv, message in bad_input_cases(tmp_path):
        result = run_cli(*argv)
        assert result.returncode == 2, (argv, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("atacdenoise: error: ") and message in lines[0], lines
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_library_whose_reads_all_fail_the_filters_is_an_error(tmp_path):
    from atacdenoise.io.reads import ReadFilter

    bam = write_paired_bam(tmp_path / "lib.bam", [(1_000, 1_200, False)])
    with pytest.raises(InputError, match="lib.bam: no insertions pass the filters"):
        compute_qc(bam, {"chr1": 100_000}, read_filter=ReadFilter(min_mapq=61))


# ---------------------------------------------------------------- real libraries

@realdata
def test_real_yeast_library(tmp_path):
    """The deep yeast library (fragments) with its Ensembl genes: the numbers benchmarks/RESULTS.md reports."""
    from atacdenoise.io.chromsizes import read_chrom_sizes

    qc = compute_qc(YEAST / "fragments.tsv.gz", read_chrom_sizes(YEAST / "chrom.sizes"), gtf=YEAST / "genes.gff3.gz")
    assert qc["n_insertions"] == 2 * 404_360
    # Ensembl yeast 'gene' starts are ORF starts: the nucleosome-free region peaks ~230 bp upstream, and in a
    # genome with a gene every ~2 kb the +-2 kb flanks are neighbouring promoters, not background, so the ENCODE
    # ratio is ~2.5 here (human HSC: 17, below) rather than the > 5 of mammalian libraries.
    assert 2.0 < qc["tss_enrichment"] < 4.0
    profile = np.convolve(qc["tss_profile"], np.ones(51) / 51, "same")
    assert -400 < int(np.argmax(profile)) - 2000 < -100
    assert 0.03 < qc["fraction_chrM"] < 0.06
    hist = np.asarray(qc["fragment_length_histogram"])
    assert hist[:147].sum() > hist[147:].sum()  # mostly nucleosome-free fragments


@realdata
def test_real_human_library_tss_enrichment_above_5():
    """The HSC 5M insertions with GENCODE TSSs: TSS enrichment well above 5, as real mammalian ATAC gives."""
    from atacdenoise.io.chromsizes import read_chrom_sizes

    hsc = DATA / "hsc"
    qc = compute_qc(hsc / "noisy_5M.tn5_insertions.bed.gz", read_chrom_sizes(hsc / "chrom.sizes"),
                    gtf=hsc / "annotation" / "tss.bed", peaks=hsc / "clean_80M.peaks.bed")
    assert qc["tss_enrichment"] > 5 and qc["n_tss"] > 300
    assert 0.5 < qc["frip"] < 0.8


@realdata
def test_real_bams_duplicates_and_chrM():
    encode = compute_qc(DATA / "bam" / "ENCSR356KRQ_rep1.subsampled400.nodup.hg38.bam",
                        dict(zip(*_bam_header(DATA / "bam" / "ENCSR356KRQ_rep1.subsampled400.nodup.hg38.bam"))))
    assert 0.65 < encode["fraction_chrM"] < 0.8  # 40,830 of 63,530 reads are on chrM
    assert encode["duplicates_method"].startswith("identical") and encode["fraction_duplicates"] < 0.01  # 'nodup'


def _bam_header(path: Path):
    with pysam.AlignmentFile(str(path)) as bam:
        return bam.references, bam.lengths


def test_nucleosome_peak_is_seen_only_when_lengths_rise_again():
    from atacdenoise.evaluate.qc import nucleosome_peak

    lengths = np.arange(1001)
    decay = 1e5 * np.exp(-lengths / 80)
    bump = decay + 20_000 * np.exp(-0.5 * ((lengths - 200) / 15) ** 2)
    seen = nucleosome_peak(bump)
    assert abs(seen["mononucleosome_peak_bp"] - 200) <= 3 and seen["mononucleosome_peak_over_trough"] > 1.5
    assert nucleosome_peak(decay)["mononucleosome_peak_over_trough"] < 1
