"""``simulate --fragments F --fasta G``: reads at known molecules of a genome, and ALIGN's adapter trimming.

Unit tests of the read generator (adapter read-through, reverse complement,
qualities, error rate) on small made-up sequences, then the whole loop on a
random genome: FASTQ -> cutadapt + bowtie2 -> the read filter's Tn5 shift puts
every insertion back at the fragments file's position.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys

import numpy as np
import pytest

from atacdenoise.errors import InputError
from atacdenoise.io.reads import iter_fragment_chunks
from atacdenoise.tracks.simulate import (NEXTERA_R1_ADAPTER, NEXTERA_R2_ADAPTER, add_errors, base_qualities,
                                         read_pairs, simulate_fastq)

COMP = str.maketrans("ACGTN", "TGCAN")


def revcomp(s: str) -> str:
    return s.translate(COMP)[::-1]


def as_text(row: np.ndarray) -> str:
    return row.tobytes().decode()


@pytest.fixture
def sequence() -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("ACGT"), size=400))
    return text, np.frombuffer(text.encode(), np.uint8)


def test_long_molecule_plus_mate_reads_forward_and_minus_mate_the_reverse_complement(sequence):
    text, seq = sequence
    r1, r2 = read_pairs(seq, np.array([100, 100]), np.array([300, 300]), 50, np.array([True, False]))
    assert as_text(r1[0]) == text[100:150]                # R1 on the plus strand: the molecule's first bases
    assert as_text(r2[0]) == revcomp(text[250:300])       # R2: reverse complement of its last bases
    assert as_text(r1[1]) == revcomp(text[250:300])       # R1 on the minus strand
    assert as_text(r2[1]) == text[100:150]


def test_short_molecule_reads_through_into_the_nextera_adapter(sequence):
    text, seq = sequence
    r1, r2 = read_pairs(seq, np.array([10]), np.array([40]), 50, np.array([True]))
    assert as_text(r1[0]) == text[10:40] + NEXTERA_R1_ADAPTER[:20]
    assert as_text(r2[0]) == revcomp(text[10:40]) + NEXTERA_R2_ADAPTER[:20]
    assert NEXTERA_R1_ADAPTER.startswith("CTGTCTCTTATACACATCT") and NEXTERA_R2_ADAPTER.startswith("CTGTCTCTTATACACATCT")
    # beyond the adapter: poly-G, as a two-colour sequencer reads nothing
    long1, _ = read_pairs(seq, np.array([10]), np.array([30]), 150, np.array([True]))
    assert as_text(long1[0]).endswith("GGGG") and len(as_text(long1[0])) == 150


def test_qualities_are_phred33_fall_along_the_read_and_state_the_error_rate():
    rng = np.random.default_rng(1)
    q = base_qualities(rng, (20_000, 50), 0.002)
    assert q.min() >= 2 and q.max() <= 41
    assert q[:, :5].mean() > q[:, -5:].mean() + 3          # worse towards the 3' end
    stated = (10.0 ** (-q / 10)).mean()
    assert 0.0015 < stated < 0.003                          # ~ the requested mean error rate


def test_errors_hit_bases_with_the_probability_their_quality_states():
    rng = np.random.default_rng(2)
    reads = np.full((20_000, 50), ord("A"), np.uint8)
    reads[:, 0] = ord("N")
    q = base_qualities(rng, reads.shape, 0.01)
    hit = add_errors(rng, reads, q)
    assert not hit[:, 0].any() and (reads[:, 0] == ord("N")).all() and (q[:, 0] == 2).all()
    expected = (10.0 ** (-q[:, 1:] / 10)).mean()
    observed = hit[:, 1:].mean()
    assert abs(observed - expected) < 0.1 * expected
    assert set(np.unique(reads[hit]).tobytes()) <= set(b"CGT")   # a substitution always changes the base


# ---------------------------------------------------------------- files


def write_genome(folder, rng, lengths: dict[str, int]) -> tuple:
    fasta = folder / "genome.fa.gz"
    seqs = {c: "".join(rng.choice(list("ACGT"), size=n)) for c, n in lengths.items()}
    with gzip.open(fasta, "wt") as fh:
        for c, s in seqs.items():
            fh.write(f">{c} made up\n" + "\n".join(s[i:i + 60] for i in range(0, len(s), 60)) + "\n")
    return fasta, seqs


def write_fragments(path, rows) -> None:
    with gzip.open(path, "wt") as fh:
        fh.writelines(f"{c}\t{s}\t{e}\tBC\t{n}\n" for c, s, e, n in rows)


def read_fastq(path) -> list[tuple[str, str, str]]:
    lines = gzip.open(path, "rt").read().splitlines()
    assert len(lines) % 4 == 0
    return [(lines[i][1:].split()[0], lines[i + 1], lines[i + 3]) for i in range(0, len(lines), 4)]


def test_simulate_fastq_undoes_the_tn5_shift_repeats_counts_and_skips_edges(tmp_path):
    rng = np.random.default_rng(3)
    fasta, seqs = write_genome(tmp_path, rng, {"chrA": 2_000, "chrB": 1_000})
    # (start, end) are Tn5-shifted: the molecule is [start - 4, end + 5)
    write_fragments(tmp_path / "f.tsv.gz", [("chrA", 100, 300, 1), ("chrA", 500, 521, 2), ("chrA", 2, 200, 1),
                                            ("chrB", 10, 996, 1)])
    s = simulate_fastq(tmp_path / "f.tsv.gz", fasta, tmp_path / "out", prefix="t", error_rate=0, seed=0)
    assert (s.fragments, s.pairs, s.off_edge, s.read_through) == (4, 3, 2, 2)
    r1, r2 = read_fastq(s.r1), read_fastq(s.r2)
    assert [n for n, _, _ in r1] == [n for n, _, _ in r2]
    assert all(len(seq) == len(q) == 50 and set(q) <= set(chr(c) for c in range(35, 75)) for _, seq, q in r1 + r2)
    chrA = seqs["chrA"]
    plus, minus = chrA[96:146], revcomp(chrA[255:305])
    assert {r1[0][1], r2[0][1]} == {plus, minus}
    molecule = chrA[496:526]   # 30 bp: both reads run into the adapter, twice (count 2)
    assert {r1[1][1], r2[1][1]} == {molecule + NEXTERA_R1_ADAPTER[:20], revcomp(molecule) + NEXTERA_R2_ADAPTER[:20]} \
        or {r1[1][1], r2[1][1]} == {molecule + NEXTERA_R2_ADAPTER[:20], revcomp(molecule) + NEXTERA_R1_ADAPTER[:20]}
    truth = gzip.open(s.truth, "rt").read().splitlines()
    assert truth == ["chrA\t100\t300\tt\t1", "chrA\t500\t521\tt\t2"]   # what was simulated, as fragments


def test_simulate_fastq_keeps_chromosomes_stops_early_and_refuses_what_it_cannot_read(tmp_path):
    rng = np.random.default_rng(4)
    fasta, _ = write_genome(tmp_path, rng, {"chrA": 3_000, "chrB": 3_000})
    rows = [("chrA", 100 + i, 300 + i, 1) for i in range(10)] + [("chrB", 100 + i, 300 + i, 1) for i in range(10)]
    write_fragments(tmp_path / "f.tsv.gz", rows)
    s = simulate_fastq(tmp_path / "f.tsv.gz", fasta, tmp_path / "o1", chroms=["chrB"], max_fragments=4)
    assert (s.chroms, s.pairs) == (["chrB"], 4)
    write_fragments(tmp_path / "other.tsv.gz", [("chrZ", 1, 100, 1)])
    with pytest.raises(InputError, match="chrZ is not in the FASTA"):
        simulate_fastq(tmp_path / "other.tsv.gz", fasta, tmp_path / "o2")
    with pytest.raises(InputError, match="no fragments"):
        simulate_fastq(tmp_path / "f.tsv.gz", fasta, tmp_path / "o3", chroms=["chrQ"])
    assert not list((tmp_path / "o3").glob("*.gz"))
    with pytest.raises(InputError, match="read-length"):
        simulate_fastq(tmp_path / "f.tsv.gz", fasta, tmp_path / "o4", read_length=5)


def test_fragment_chunks_split_chromosomes_and_refuse_unsorted_files(tmp_path):
    write_fragments(tmp_path / "f.tsv.gz", [("c1", i, i + 50, 1) for i in range(5)] + [("c2", 1, 60, 3)])
    chunks = [(c, s.tolist(), n.tolist()) for c, s, _, n in iter_fragment_chunks(tmp_path / "f.tsv.gz", 2)]
    assert chunks == [("c1", [0, 1], [1, 1]), ("c1", [2, 3], [1, 1]), ("c1", [4], [1]), ("c2", [1], [3])]
    write_fragments(tmp_path / "bad.tsv.gz", [("c1", 1, 50, 1), ("c2", 1, 50, 1), ("c1", 5, 50, 1)])
    with pytest.raises(InputError, match="line 3: not sorted by chromosome"):
        list(iter_fragment_chunks(tmp_path / "bad.tsv.gz"))


def test_cli_simulate_with_fasta_and_a_bad_fragments_value(tmp_path):
    rng = np.random.default_rng(5)
    fasta, _ = write_genome(tmp_path, rng, {"chrA": 2_000})
    write_fragments(tmp_path / "f.tsv.gz", [("chrA", 100, 300, 1)])
    cli = [sys.executable, "-m", "atacdenoise.cli", "simulate", "--outdir", str(tmp_path / "o")]
    ok = subprocess.run(cli + ["--fragments", str(tmp_path / "f.tsv.gz"), "--fasta", str(fasta), "--read-length", "36",
                               "--prefix", "x"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert len(read_fastq(tmp_path / "o" / "x_R1.fastq.gz")[0][1]) == 36
    bad = subprocess.run(cli + ["--fragments", "f.tsv.gz"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().endswith("give its genome with --fasta")


# ---------------------------------------------------------------- the loop through ALIGN and FILTER_SHIFT

@pytest.mark.skipif(not (shutil.which("bowtie2") and shutil.which("samtools") and shutil.which("cutadapt")),
                    reason="bowtie2, samtools and cutadapt are needed")
def test_aligned_and_shifted_insertions_land_exactly_on_the_fragments_positions(tmp_path):
    """A random genome is uniquely mappable: every fragment, short ones (adapter read-through) included, must
    come back with both insertions exact, despite sequencing errors."""
    from atacdenoise.evaluate.recovery import insertion_recovery
    from atacdenoise.io.align import align
    from atacdenoise.io.reads import iter_insertions, write_insertions_bed

    rng = np.random.default_rng(6)
    fasta, _ = write_genome(tmp_path, rng, {"chrA": 60_000, "chrB": 40_000})
    rows = []
    for chrom, n in (("chrA", 60_000), ("chrB", 40_000)):
        lengths = np.concatenate([rng.integers(11, 45, 300), rng.integers(45, 400, 700)])  # shifted lengths
        starts = np.sort(rng.integers(10, n - 500, len(lengths)))
        rows += sorted({(chrom, int(s), int(s + m), 1) for s, m in zip(starts, lengths)}, key=lambda r: r[1:3])
    write_fragments(tmp_path / "f.tsv.gz", rows)
    s = simulate_fastq(tmp_path / "f.tsv.gz", fasta, tmp_path / "sim", error_rate=0.005, seed=1)
    assert s.read_through > 250
    bam = align(s.r1, tmp_path / "a.bam", fastq2=s.r2, fasta=fasta, threads=2)
    sizes = {"chrA": 60_000, "chrB": 40_000}
    write_insertions_bed(tmp_path / "ins.bed.gz", iter_insertions(bam.bam, sizes))
    r = insertion_recovery(s.truth, tmp_path / "ins.bed.gz", sizes)
    assert r.fragments == len(rows)
    assert r.misplaced <= 2, r.as_dict()
    assert r.fragment_rate >= 0.99, r.as_dict()
    assert r.insertion_rate >= 0.99, r.as_dict()
