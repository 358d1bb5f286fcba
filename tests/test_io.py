"""The io layer: reads -> insertions, bigWig and narrowPeak in and out, and how bad input is reported."""

from __future__ import annotations

import gzip
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pysam
import pyBigWig
import pytest

from atacdenoise import cli
from atacdenoise.errors import InputError
from atacdenoise.io.bigwig import bigwig_chrom_sizes, read_bigwig, write_bigwig
from atacdenoise.io.chromsizes import read_chrom_sizes
from atacdenoise.io.narrowpeak import Peaks, read_peaks, write_narrowpeak
from atacdenoise.io.reads import (
    FilterCounts,
    ReadFilter,
    bam_chrom_sizes,
    detect_format,
    iter_insertions,
    write_insertions_bed,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ENCODE_BAM = DATA / "bam" / "ENCSR356KRQ_rep1.subsampled400.nodup.hg38.bam"
GM_BAM = DATA / "bam" / "GM12878_chr1_subset.hg19.bam"
HSC = DATA / "hsc"
HSC_BED = HSC / "noisy_5M.tn5_insertions.bed.gz"



def realdata(test):
    """Mark a test as reading ../shared/data; skip it with a reason when the folder is absent."""
    skip = pytest.mark.skipif(not DATA.exists(), reason=f"real data folder {DATA} is absent")
    return pytest.mark.realdata(skip(test))


DROP_REASONS = ("unmapped", "low_mapq", "duplicate", "secondary", "supplementary", "qcfail",
                "improper_pair", "excluded_chrom", "not_in_chrom_sizes")


# ---------------------------------------------------------------- helpers

def all_records(path: Path) -> list[pysam.AlignedSegment]:
    with pysam.AlignmentFile(str(path)) as bam:
        return list(bam.fetch(until_eof=True))


def write_bam(path: Path, sort_order: str, starts: list[int], flags: list[int] | None = None,
              mapqs: list[int] | None = None, chrom: str = "chr1") -> Path:
    """A tiny BAM of 20M reads at ``starts`` (flag 0, MAPQ 60 unless given), written in the given order."""
    header = {"HD": {"VN": "1.6", "SO": sort_order}, "SQ": [{"SN": chrom, "LN": 10_000}]}
    flags = flags or [0] * len(starts)
    mapqs = mapqs or [60] * len(starts)
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for i, (start, flag, mapq) in enumerate(zip(starts, flags, mapqs)):
            read = pysam.AlignedSegment(out.header)
            read.query_name = f"r{i}"
            read.query_sequence = "A" * 20
            read.flag = flag
            read.reference_id = 0
            read.reference_start = start
            read.mapping_quality = mapq
            read.cigarstring = None if flag & 0x4 else "20M"
            out.write(read)
    return path


def write_text(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


@contextmanager
def raises_input_error(path: Path, *words: str):
    """The block raises an InputError whose message names ``path`` and holds every one of ``words``."""
    with pytest.raises(InputError) as excinfo:
        yield excinfo
    message = str(excinfo.value)
    assert str(path) in message
    for word in words:
        assert word in message, message


# ---------------------------------------------------------------- format detection

@pytest.mark.parametrize("name, fmt", [
    ("bam/ENCSR356KRQ_rep1.subsampled400.nodup.hg38.bam", "bam"),
    ("hsc/noisy_5M.tn5_insertions.bed.gz", "insertions"),
    ("hsc/noisy_5M.coverage.bw", "bigwig"),
    ("hsc/clean_80M.peaks.bed", "insertions"),  # a BED by name; reads as positions = starts
], ids=["bam", "bed.gz", "bigwig", "bed"])
@realdata
def test_detect_format_on_real_files(name, fmt):
    assert detect_format(DATA / name) == fmt


def test_detect_format_uses_magic_bytes_and_content(tmp_path):
    bam = write_bam(tmp_path / "reads.data", "coordinate", [10, 20])      # BAM content, odd name
    assert detect_format(bam) == "bam"
    bw = tmp_path / "track.data"
    write_bigwig(bw, {"chr1": 100}, [("chr1", np.ones(4))], bin_size=25)
    assert detect_format(bw) == "bigwig"
    frags = write_text(tmp_path / "atac_fragments.tsv.gz", "chr1\t10\t60\tAACG-1\t2\n")
    assert detect_format(frags) == "fragments"
    bed = write_text(tmp_path / "ins.bed", "chr1\t10\t11\t.\t0\t+\n")
    assert detect_format(bed) == "insertions"


@pytest.mark.parametrize("name, content, problem", [
    ("empty.bam", "", "empty"),
    ("reads.txt", "chr1\t1\t2\n", "unknown input format"),
    ("missing.bed", None, "does not exist"),
    ("fake.bw", "not a bigwig\n", "not a bigWig"),
    ("cells.tsv", "chr1\tx\ty\n", "expected a fragments file"),
])
def test_detect_format_rejects_unknown_and_empty(tmp_path, name, content, problem):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with raises_input_error(path, problem):
        detect_format(path)


# ---------------------------------------------------------------- BAM filters

def test_bam_filter_counts_each_record_once_under_its_first_reason(tmp_path):
    records = [  # (start, flag, mapq, reason dropped or None)
        (100, 0x4, 0, "unmapped"),           # placed beside its mate but unmapped
        (110, 0x100 | 0x400, 60, "secondary"),  # also a duplicate: counted once, as secondary
        (120, 0x800, 60, "supplementary"),
        (130, 0x200, 60, "qcfail"),
        (140, 0x400, 60, "duplicate"),
        (150, 0x1, 60, "improper_pair"),     # paired, not properly
        (160, 0x3, 10, "low_mapq"),
        (170, 0x3, 30, None),                # proper pair at exactly the MAPQ threshold: kept
        (180, 0x3 | 0x10, 60, None),         # minus strand
        (190, 0x0, 60, None),                # single-end reads need no pair flags
    ]
    path = write_bam(tmp_path / "f.bam", "coordinate", [r[0] for r in records],
                     flags=[r[1] for r in records], mapqs=[r[2] for r in records])
    counts = FilterCounts()
    positions = dict(iter_insertions(path, {"chr1": 10_000}, counts=counts))["chr1"]
    np.testing.assert_array_equal(positions, [174, 180 + 20 - 1 - 5, 194])
    assert counts.kept == 3 and counts.per_chrom == {"chr1": 3}
    for reason in DROP_REASONS:
        expected = sum(r[3] == reason for r in records)
        assert getattr(counts, reason) == expected, reason
    relaxed = ReadFilter(min_mapq=0, keep_duplicates=True, keep_improper_pairs=True)
    counts = FilterCounts()
    list(iter_insertions(path, {"chr1": 10_000}, read_filter=relaxed, counts=counts))
    assert counts.kept == 6 and counts.unmapped == 1 and counts.secondary == 1


# ---------------------------------------------------------------- BAM on real data

@realdata
def test_encode_bam_counts_chrM_as_excluded():
    sizes = bam_chrom_sizes(ENCODE_BAM)
    assert sizes == {"chr19": 58_617_616, "chrM": 16_569}  # chrM is in the sizes: only the filter drops it
    counts = FilterCounts()
    chroms = dict(iter_insertions(ENCODE_BAM, sizes, counts=counts))
    assert counts.excluded_chrom == 40_830
    assert "chrM" not in chroms and list(chroms) == ["chr19"]
    assert counts.kept == len(chroms["chr19"]) == counts.per_chrom["chr19"]
    assert counts.kept + sum(getattr(counts, r) for r in DROP_REASONS) == 22_700 + 40_830


@realdata
def test_bam_contigs_outside_chrom_sizes_are_counted():
    counts = FilterCounts()
    no_exclusions = ReadFilter(exclude_chroms=())
    chroms = dict(iter_insertions(ENCODE_BAM, {"chr19": 58_617_616}, read_filter=no_exclusions, counts=counts))
    assert list(chroms) == ["chr19"]
    assert counts.not_in_chrom_sizes == 40_830 and counts.excluded_chrom == 0


@realdata
def test_gm12878_counts_and_positions_match_pysam():
    sizes = bam_chrom_sizes(GM_BAM)
    counts = FilterCounts()
    chroms = dict(iter_insertions(GM_BAM, sizes, counts=counts))
    records = all_records(GM_BAM)
    assert counts.kept + sum(getattr(counts, r) for r in DROP_REASONS) == len(records) == 88_714
    assert counts.improper_pair > 0 and counts.low_mapq > 0   # this file has both kinds

    # The same selection and shift computed record by record, straight from pysam.
    def kept(r):
        return (not (r.is_unmapped or r.is_secondary or r.is_supplementary or r.is_qcfail or r.is_duplicate)
                and (r.is_proper_pair or not r.is_paired) and r.mapping_quality >= 30)

    expected = np.sort([r.reference_end - 1 - 5 if r.is_reverse else r.reference_start + 4
                        for r in records if kept(r)])
    positions = chroms["chr1"]
    assert positions.dtype == np.int64 and np.all(np.diff(positions) >= 0)
    np.testing.assert_array_equal(positions, expected)


@realdata
def test_unshifted_insertion_is_the_reads_5prime_base():
    """With shifts 0/0 each read gives its 5' aligned base: first aligned base (+), last (-).

    The ENCODE reads are local alignments: soft clips make reference_start/end
    differ from the read's ends, the cases worth checking.
    """
    loose = ReadFilter(min_mapq=0, shift_plus=0, shift_minus=0)
    positions = dict(iter_insertions(ENCODE_BAM, bam_chrom_sizes(ENCODE_BAM), read_filter=loose))["chr19"]
    assert len(positions) == 22_700   # nothing dropped: every read, both mates, one insertion each
    with pysam.AlignmentFile(str(ENCODE_BAM)) as bam:
        reads = list(bam.fetch("chr19"))
    assert sum("S" in r.cigarstring for r in reads) > 1000
    aligned = [r.get_reference_positions() for r in reads]
    five_prime = np.sort([a[-1] if r.is_reverse else a[0] for r, a in zip(reads, aligned)])
    np.testing.assert_array_equal(positions, five_prime)


# ---------------------------------------------------------------- insertions BED and bigWig on real data

@realdata
def test_hsc_insertions_bed():
    counts = FilterCounts()
    chroms = dict(iter_insertions(HSC_BED, read_chrom_sizes(HSC / "chrom.sizes"), counts=counts))
    assert {c: len(p) for c, p in chroms.items()} == {"chr1": 13_388, "chr2": 17_232}
    assert all(np.all(np.diff(p) >= 0) and p.dtype == np.int64 for p in chroms.values())
    with gzip.open(HSC_BED, "rt") as fh:
        first = fh.readline().split()
    assert chroms[first[0]][0] <= int(first[1])


@realdata
def test_hsc_coverage_bigwig_is_201bp_extended_insertions():
    """Each insertion adds 1 to every base within +-100 bp, clipped at the chromosome ends.

    So the chr1 sum is the exact number of (insertion, covered base) pairs; the
    values are small integers, exact in float32, and summed in float64.
    """
    sizes = read_chrom_sizes(HSC / "chrom.sizes")
    bw = HSC / "noisy_5M.coverage.bw"
    assert bigwig_chrom_sizes(bw) == sizes
    insertions = dict(iter_insertions(HSC_BED, sizes))["chr1"]
    coverage = read_bigwig(bw, "chr1")
    assert coverage.dtype == np.float32 and len(coverage) == sizes["chr1"]
    length = sizes["chr1"]
    covered = np.minimum(insertions + 100, length - 1) - np.maximum(insertions - 100, 0) + 1
    assert coverage.sum(dtype=np.float64) == covered.sum()
    # A window read equals the same slice of the whole chromosome.
    np.testing.assert_array_equal(read_bigwig(bw, "chr1", 10_400, 10_700), coverage[10_400:10_700])


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("bin_size", [1, 25])
def test_bigwig_round_trip(tmp_path, bin_size):
    sizes = {"chr1": 1013, "chr2": 60, "chr3": 500}   # 1013 and 60 leave a partial last bin at 25 bp
    rng = np.random.default_rng(bin_size)
    tracks = {}
    for chrom, length in list(sizes.items())[:2]:
        bins = -(-length // bin_size)
        values = np.repeat(rng.integers(0, 4, size=bins // 3 + 1) * 0.5, 3)[:bins].astype(np.float32)
        values[-1] = 7.25                                 # the clipped last bin must survive
        tracks[chrom] = values
    path = tmp_path / "track.bw"
    write_bigwig(path, sizes, tracks.items(), bin_size)
    assert bigwig_chrom_sizes(path) == sizes
    for chrom, values in tracks.items():
        per_base = np.repeat(values, bin_size)[: sizes[chrom]]
        np.testing.assert_array_equal(read_bigwig(path, chrom), per_base)
        np.testing.assert_array_equal(read_bigwig(path, chrom, 7, 40), per_base[7:40])
        # fixed-step layout: one interval per non-zero bin, none for zero bins
        with pyBigWig.open(str(path)) as bw:
            assert len(bw.intervals(chrom) or ()) == int(np.count_nonzero(values))
    np.testing.assert_array_equal(read_bigwig(path, "chr3"), np.zeros(500, np.float32))  # never written
    assert [p.name for p in tmp_path.iterdir()] == ["track.bw"]


def test_round_significant_keeps_the_asked_bits_to_nearest():
    from atacdenoise.io.bigwig import round_significant

    rng = np.random.default_rng(3)
    values = np.concatenate([rng.lognormal(0, 4, 10_000), -rng.lognormal(0, 4, 100), [0.0, 1.0, 2.0 - 2 ** -12]])
    values = values.astype(np.float32)
    for bits in (10, 4, 23):
        rounded = round_significant(values, bits)
        assert rounded.dtype == np.float32 and np.array_equal(np.sign(rounded), np.sign(values))
        mantissas = np.frexp(rounded)[0] * 2 ** (bits + 1)  # bits + 1 significant bits: whole numbers
        np.testing.assert_array_equal(mantissas, np.round(mantissas))
        error = np.abs(rounded.astype(np.float64) - values) / np.maximum(np.abs(values), 1e-30)
        assert error.max() <= 2.0 ** -(bits + 1)
    assert round_significant(np.float32([2.0 - 2 ** -12]), 10)[0] == 2.0  # rounding up carries into the exponent
    with pytest.raises(ValueError, match="mantissa_bits"):
        round_significant(values, 0)


def test_bigwig_read_errors(tmp_path):
    path = tmp_path / "t.bw"
    write_bigwig(path, {"chr1": 100}, [("chr1", np.ones(4))], 25)
    with raises_input_error(path, "chrX", "not in this bigWig"):
        read_bigwig(path, "chrX")
    with raises_input_error(tmp_path / "missing.bw", "does not exist"):
        read_bigwig(tmp_path / "missing.bw", "chr1")
    text = write_text(tmp_path / "peaks.bw", "chr1\t1\t2\n")
    with raises_input_error(text, "not a bigWig"):
        bigwig_chrom_sizes(text)


def test_bigwig_write_failure_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        write_bigwig(tmp_path / "t.bw", {"chr1": 100}, [("chr1", np.ones(3))], 25)  # 3 bins, 4 needed
    assert list(tmp_path.iterdir()) == []


def test_narrowpeak_round_trip(tmp_path):
    peaks = [
        Peaks("chr1", np.array([100, 500]), np.array([300, 900]), np.array([2.5, 250.0], np.float32),
              np.array([50, 10])),
        Peaks("chr2", np.array([7]), np.array([8]), np.array([0.3], np.float32), None),
    ]
    path = tmp_path / "calls.narrowPeak"
    write_narrowpeak(path, peaks, name_prefix="sample")
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    assert [f[3] for f in lines] == ["sample_0", "sample_1", "sample_2"]
    assert [int(f[4]) for f in lines] == [25, 1000, 3]
    assert all(len(f) == 10 and f[5] == "." for f in lines)
    back = read_peaks(path)
    assert list(back) == ["chr1", "chr2"]
    for original in peaks:
        got = back[original.chrom]
        np.testing.assert_array_equal(got.starts, original.starts)
        np.testing.assert_array_equal(got.ends, original.ends)
        np.testing.assert_array_equal(got.signal, original.signal)
        assert got.starts.dtype == np.int64 and got.signal.dtype == np.float32
    np.testing.assert_array_equal(back["chr1"].summits, [50, 10])
    assert back["chr2"].summits is None    # written as -1: "no summit"


def test_read_peaks_bed_variants(tmp_path):
    bed3 = write_text(tmp_path / "p.bed.gz", "track name=x\nchr1\t500\t600\nchr1\t100\t200\n")
    peaks = read_peaks(bed3)["chr1"]
    np.testing.assert_array_equal(peaks.starts, [100, 500])         # sorted by start
    np.testing.assert_array_equal(peaks.signal, [1, 1])
    assert peaks.summits is None
    bed5 = write_text(tmp_path / "p5.bed", "chr1\t100\t200\tp\t17\nchr1\t300\t400\tq\t.\n")
    np.testing.assert_array_equal(read_peaks(bed5)["chr1"].signal, [17, 1])


def read_insertions(path: Path) -> list:
    return list(iter_insertions(path, {"chr1": 1000}))


PEAK_LINE, INSERTION_LINES = "chr1\t1\t50\n", "chr1\t1\t2\t.\t0\t+\nchr1\t5\t6\t.\t0\t+\n"


@pytest.mark.parametrize("read, name, good_lines, bad_line, problem", [
    (read_peaks, "p.bed", PEAK_LINE, "chr1\t100\n", "at least 3 columns"),
    (read_peaks, "p.bed", PEAK_LINE, "chr1\tabc\t200\n", "non-numeric"),
    (read_peaks, "p.bed", PEAK_LINE, "chr1\t200\t100\n", "start < end"),
    (read_insertions, "ins.bed.gz", INSERTION_LINES, "chr1\t100\n", "at least 3 columns"),
    (read_insertions, "ins.bed.gz", INSERTION_LINES, "chr1\t1x0\t101\t.\t0\t+\n", "start is not an integer: '1x0'"),
    (read_insertions, "ins.bed.gz", INSERTION_LINES, "chr1\t100\t100\t.\t0\t+\n", "end (100) <= start (100)"),
])
def test_malformed_line_names_file_and_line(tmp_path, read, name, good_lines, bad_line, problem):
    path = write_text(tmp_path / name, good_lines + bad_line)
    with raises_input_error(path, f"line {good_lines.count(chr(10)) + 1}", problem):
        read(path)


@realdata
def test_read_real_peaks():
    peaks = read_peaks(HSC / "clean_80M.peaks.bed")
    n_lines = sum(1 for _ in open(HSC / "clean_80M.peaks.bed"))
    assert sum(len(p.starts) for p in peaks.values()) == n_lines
    assert set(peaks) <= {"chr1", "chr2"}
    assert all(np.all(p.ends > p.starts) and np.all(np.diff(p.starts) >= 0) for p in peaks.values())


# ---------------------------------------------------------------- text inputs

def test_fragments_give_both_ends_repeated_by_count(tmp_path):
    path = write_text(tmp_path / "fragments.tsv.gz",
                      "# comment\n"
                      "chr1\t10\t60\tAAAC-1\t2\n"
                      "chr1\t5\t20\tAAAG-1\t1\n"
                      "chrUn\t1\t9\tAAAG-1\t1\n"
                      "chr2\t0\t1000\tAAAT-1\t3\n")
    counts = FilterCounts()
    chroms = dict(iter_insertions(path, {"chr1": 1000, "chr2": 1000}, counts=counts))
    np.testing.assert_array_equal(chroms["chr1"], [5, 10, 10, 19, 59, 59])
    np.testing.assert_array_equal(chroms["chr2"], [0, 0, 0, 999, 999, 999])
    assert counts.not_in_chrom_sizes == 1 and counts.kept == 12
    four_columns = write_text(tmp_path / "b_fragments.tsv", "chr1\t10\t60\tAAAC-1\n")
    np.testing.assert_array_equal(dict(iter_insertions(four_columns, {"chr1": 100}))["chr1"], [10, 59])


def test_insertions_outside_chromosome_are_dropped(tmp_path):
    path = write_text(tmp_path / "ins.bed", "chr1\t99\t100\t.\t0\t+\nchr1\t100\t101\t.\t0\t+\nchr1\t0\t1\t.\t0\t-\n")
    np.testing.assert_array_equal(dict(iter_insertions(path, {"chr1": 100}))["chr1"], [0, 99])


def test_bed_not_grouped_by_chromosome(tmp_path):
    path = write_text(tmp_path / "ins.bed", "chr1\t1\t2\nchr2\t1\t2\nchr1\t5\t6\n")
    with raises_input_error(path, "not sorted by chromosome", "line 3"):
        list(iter_insertions(path, {"chr1": 100, "chr2": 100}))


def test_text_chromosome_naming_mismatch(tmp_path):
    path = write_text(tmp_path / "ins.bed", "1\t1\t2\n2\t1\t2\n")
    with raises_input_error(path, "'1'", "'chr1'"):
        list(iter_insertions(path, {"chr1": 100, "chr2": 100}))


def test_text_without_data_lines(tmp_path):
    path = write_text(tmp_path / "ins.bed.gz", "track name=empty\n")
    with raises_input_error(path, "no data lines"):
        list(iter_insertions(path, {"chr1": 100}))


def test_bigwig_is_not_an_insertion_source(tmp_path):
    path = tmp_path / "t.bw"
    write_bigwig(path, {"chr1": 100}, [("chr1", np.ones(4))], 25)
    with raises_input_error(path, "bigWig", "only accepted where a track is needed"):
        iter_insertions(path, {"chr1": 100})


# ---------------------------------------------------------------- bad BAMs

def test_empty_bam(tmp_path):
    path = tmp_path / "empty.bam"
    path.touch()
    with raises_input_error(path, "file is empty"):
        iter_insertions(path, {"chr1": 100}, fmt="bam")


@realdata
def test_truncated_bam(tmp_path):
    path = tmp_path / "cut.bam"
    path.write_bytes(GM_BAM.read_bytes()[: GM_BAM.stat().st_size // 2])
    for read_it in (lambda: iter_insertions(path, bam_chrom_sizes(GM_BAM)), lambda: bam_chrom_sizes(path)):
        with raises_input_error(path, "truncated BGZF (file is incomplete)"):
            read_it()


def test_unsorted_bam_header(tmp_path):
    path = write_bam(tmp_path / "u.bam", "unsorted", [500, 100, 300])
    with raises_input_error(path, "not coordinate-sorted", "samtools sort"):
        iter_insertions(path, {"chr1": 10_000})


def test_bam_claiming_sorted_with_records_out_of_order(tmp_path):
    path = write_bam(tmp_path / "liar.bam", "coordinate", [500, 100, 300])
    with raises_input_error(path, "not coordinate-sorted", "samtools sort"):
        iter_insertions(path, {"chr1": 10_000})
    assert not Path(f"{path}.bai").exists()


def test_missing_index_is_built_when_folder_is_writable(tmp_path, caplog):
    path = write_bam(tmp_path / "s.bam", "coordinate", [100, 100, 300])
    with caplog.at_level("INFO", logger="atacdenoise"):
        chroms = dict(iter_insertions(path, {"chr1": 10_000}))
    np.testing.assert_array_equal(chroms["chr1"], [104, 104, 304])
    assert Path(f"{path}.bai").exists()
    assert f"built {path}.bai" in caplog.text


def test_missing_index_in_read_only_folder(tmp_path, monkeypatch):
    path = write_bam(tmp_path / "s.bam", "coordinate", [100, 300])
    # Tests may run as root, for whom chmod does not forbid writing; ask the code's own question instead.
    monkeypatch.setattr("atacdenoise.io.reads.os.access", lambda *args: False)
    with raises_input_error(path, "no index (.bai)", f"samtools index {path}"):
        iter_insertions(path, {"chr1": 10_000})


def test_bam_chromosome_naming_mismatch(tmp_path):
    path = write_bam(tmp_path / "s.bam", "coordinate", [100, 300])
    pysam.index(str(path))
    with raises_input_error(path, "'chr1'", "'1'"):
        iter_insertions(path, {"1": 10_000, "2": 10_000})


# ---------------------------------------------------------------- writing insertions

def test_write_insertions_bed_round_trip(tmp_path):
    chroms = {"chr1": np.array([3, 3, 10]), "chr2": np.array([0])}
    path = tmp_path / "out.bed.gz"
    assert write_insertions_bed(path, iter(chroms.items())) == 4
    with open(path, "rb") as fh:
        assert fh.read(4) == b"\x1f\x8b\x08\x04"    # BGZF (gzip with extra field): tabix can index it
    with gzip.open(path, "rt") as fh:
        assert fh.readline() == "chr1\t3\t4\t.\t0\t+\n"
    back = dict(iter_insertions(path, {"chr1": 100, "chr2": 100}))
    assert {c: p.tolist() for c, p in back.items()} == {c: p.tolist() for c, p in chroms.items()}
    plain = tmp_path / "out.bed"
    write_insertions_bed(plain, iter(chroms.items()))
    assert len(plain.read_text().splitlines()) == 4


def test_write_insertions_bed_leaves_nothing_when_input_fails(tmp_path):
    # The first chromosome is written before the input turns out to be unsorted.
    bad = write_text(tmp_path / "ins.bed", "chr1\t1\t2\nchr2\t1\t2\nchr1\t5\t6\n")
    out_dir = tmp_path / "out"
    with pytest.raises(InputError):
        write_insertions_bed(out_dir / "x.bed.gz", iter_insertions(bad, {"chr1": 100, "chr2": 100}))
    assert list(out_dir.iterdir()) == []   # neither x.bed.gz nor its temporary file


# ---------------------------------------------------------------- CLI

@realdata
def test_cli_insertions_from_bam(tmp_path, capsys):
    out = tmp_path / "x.bed.gz"
    assert cli.main(["insertions", "--input", str(ENCODE_BAM), "--output", str(out), "--stats"]) == 0
    captured = capsys.readouterr()
    stats = json.loads(captured.out)
    assert stats["excluded_chrom"] == 40_830
    with gzip.open(out, "rt") as fh:
        chroms = [line.split("\t", 1)[0] for line in fh]
    assert len(chroms) == stats["kept"] > 0 and set(chroms) == {"chr19"}
    assert f"wrote {stats['kept']:,} insertions" in captured.err


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    bad = write_text(tmp_path / "ins.bed", "chr1\t1\t2\nchr1\toops\t3\n")
    sizes = write_text(tmp_path / "chrom.sizes", "chr1\t100\n")
    out = tmp_path / "x.bed"
    code = cli.main(["insertions", "--input", str(bad), "--chrom-sizes", str(sizes), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"atacdenoise: error: {bad}: line 2")
    assert not out.exists()


def test_interval_sums_per_bin_equal_the_per_base_mask():
    """covered_bases and bins_inside work on intervals (memory per peak, not per base) and agree with
    summarising interval_mask's per-base array, on random overlapping, touching and out-of-range peaks."""
    from atacdenoise.io.narrowpeak import Peaks, bins_inside, covered_bases, interval_mask

    rng = np.random.default_rng(1)
    for _ in range(500):
        length, bin_size, n = int(rng.integers(1, 3000)), int(rng.integers(1, 60)), int(rng.integers(0, 30))
        starts = rng.integers(-50, length + 50, n)
        peaks = Peaks("c", starts, starts + rng.integers(1, 300, n), np.ones(n, np.float32))
        mask = interval_mask(peaks, length)
        assert covered_bases(peaks, length) == mask.sum()
        centres = bins_inside(peaks, length, bin_size, rule="centre")
        expected = mask[bin_size // 2::bin_size]
        assert (centres[:expected.size] == expected).all() and not centres[expected.size:].any()
        padded = np.zeros(-(-length // bin_size) * bin_size, bool)
        padded[:length] = mask
        assert (bins_inside(peaks, length, bin_size, rule="whole") == padded.reshape(-1, bin_size).all(axis=1)).all()
