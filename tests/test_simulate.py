"""The simulator: valid files, realistic fragments, truth that matches the reads."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyBigWig
import pysam
import pytest

from atacdenoise.tracks.simulate import simulate

SMALL = dict(n_chroms=1, chrom_length=200_000, n_fragments=5_000)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """2 x 1 Mb, 100k fragments: big enough for stable statistics, a couple of seconds."""
    return simulate(tmp_path_factory.mktemp("sim"), n_chroms=2, chrom_length=1_000_000, n_fragments=100_000,
                    frip=0.4, seed=7)


def _filtered_records(bam_path):
    """Records the default read filter keeps (MAPQ >= 30, no duplicates, no chrM, proper pairs)."""
    with pysam.AlignmentFile(bam_path) as bam:
        for r in bam.fetch():
            if r.reference_name != "chrM" and r.mapping_quality >= 30 and not r.is_duplicate and r.is_proper_pair:
                yield r


def _insertions(bam_path) -> dict[str, np.ndarray]:
    """Tn5 sites with the pipeline's convention: plus start + 4, minus end - 1 - 5."""
    sites: dict[str, list[int]] = {}
    for r in _filtered_records(bam_path):
        site = r.reference_end - 1 - 5 if r.is_reverse else r.reference_start + 4
        sites.setdefault(r.reference_name, []).append(site)
    return {c: np.array(v) for c, v in sites.items()}


def _peak_mask(bed_path, chrom, length) -> np.ndarray:
    mask = np.zeros(length, bool)
    for line in Path(bed_path).read_text().splitlines():
        c, s, e = line.split()[:3]
        if c == chrom:
            mask[int(s):int(e)] = True
    return mask


def _read_fastq(path):
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    return lines[0::4], lines[1::4], lines[3::4]


def test_files_exist_and_are_valid(sim):
    for path in sim.values():
        assert Path(path).stat().st_size > 0, path
    sizes = dict(line.split() for line in Path(sim["chrom_sizes"]).read_text().splitlines())
    with pysam.FastaFile(sim["genome"]) as fa:
        assert dict(zip(fa.references, map(str, fa.lengths))) == sizes
    assert "chrM" in sizes
    with pysam.AlignmentFile(sim["bam"]) as bam:
        assert bam.header["HD"]["SO"] == "coordinate"
        assert bam.references == tuple(sizes)
        assert bam.count("chr1", 100_000, 200_000) > 0  # the index works
        last = (-1, -1)
        for r in bam.fetch(until_eof=True):
            key = (r.reference_id, r.reference_start)
            assert key >= last
            last = key
    names1, seqs1, quals1 = _read_fastq(sim["r1"])
    names2, seqs2, _ = _read_fastq(sim["r2"])
    assert len(names1) == len(names2) == 100_000
    assert [n.split()[0] for n in names1] == [n.split()[0] for n in names2]
    assert names1[5].startswith("@sim:1:5 ")
    assert all(len(s) == len(q) for s, q in zip(seqs1[:1000], quals1[:1000]))
    assert set("".join(quals1[:1000])) == {"I"}
    assert not [p for p in Path(sim["bam"]).parent.iterdir() if ".tmp" in p.name]


def test_pairs_flags_and_filter_fodder(sim):
    with pysam.AlignmentFile(sim["bam"]) as bam:
        records = list(bam.fetch(until_eof=True))
    assert len(records) == 200_000
    mates = {}
    for r in records:
        assert r.is_paired and r.is_proper_pair and not r.is_unmapped and r.cigarstring == f"{r.query_length}M"
        mates.setdefault(r.query_name, []).append(r)
    for a, b in list(mates.values())[:2000]:
        assert {a.is_read1, b.is_read1} == {True, False}
        assert a.is_reverse != b.is_reverse
        assert a.next_reference_start == b.reference_start and b.next_reference_start == a.reference_start
        assert a.template_length == -b.template_length != 0
        plus = a if not a.is_reverse else b
        minus = b if plus is a else a
        assert plus.template_length == minus.reference_end - plus.reference_start
    mapq = np.array([r.mapping_quality for r in records])
    dup = np.mean([r.is_duplicate for r in records])
    chrm = np.mean([r.reference_name == "chrM" for r in records])
    assert set(np.unique(mapq)) == {0, 42}
    assert 0.002 < np.mean(mapq == 0) < 0.05
    assert 0.005 < dup < 0.1 and 0.005 < chrm < 0.1


def test_fragment_lengths_show_nucleosome_modes(sim):
    tlen = np.array([r.template_length for r in _filtered_records(sim["bam"]) if r.template_length > 0])
    hist = np.bincount(tlen, minlength=600)
    nfr, mono, di = (lo + int(np.argmax(hist[lo:hi])) for lo, hi in ((30, 150), (150, 300), (300, 500)))
    assert 50 <= nfr <= 120 and 180 <= mono <= 250 and 350 <= di <= 450
    # modes, not just maxima of a falling curve: dips between them
    assert hist[150:170].mean() < hist[mono - 5:mono + 5].mean() / 2
    assert hist[290:320].mean() < hist[di - 5:di + 5].mean() / 1.5
    assert hist[30:150].sum() > hist[150:300].sum() > hist[300:500].sum()


def test_insertions_enriched_in_truth_peaks(sim):
    sizes = dict(line.split() for line in Path(sim["chrom_sizes"]).read_text().splitlines())
    inside = total = covered = 0
    for chrom, sites in _insertions(sim["bam"]).items():
        mask = _peak_mask(sim["truth_peaks"], chrom, int(sizes[chrom]))
        inside += mask[sites].sum()
        total += len(sites)
        covered += mask.mean() / 2
    frip = inside / total
    assert abs(frip - 0.4) < 0.06
    assert frip > 10 * covered  # peaks cover ~2 % of the genome


def test_truth_accessibility_matches_insertions(sim):
    with pyBigWig.open(sim["truth_accessibility"]) as bw:
        for chrom, sites in _insertions(sim["bam"]).items():
            length = bw.chroms(chrom)
            truth = np.nan_to_num(np.array(bw.values(chrom, 0, length)))
            observed = np.bincount(sites, minlength=length)
            assert abs(truth.sum() - observed.sum()) < 0.02 * observed.sum()
            bins = length // 1000 * 1000
            r = np.corrcoef(truth[:bins].reshape(-1, 1000).sum(1), observed[:bins].reshape(-1, 1000).sum(1))[0, 1]
            assert r > 0.95


def test_reads_match_genome(sim):
    n_reads = mismatches = bases = 0
    with pysam.FastaFile(sim["genome"]) as fa, pysam.AlignmentFile(sim["bam"]) as bam:
        genome = {c: fa.fetch(c) for c in fa.references}
        for r in bam.fetch(until_eof=True):
            ref = genome[r.reference_name][r.reference_start:r.reference_end]
            seq = r.query_sequence
            mismatches += sum(a != b for a, b in zip(seq, ref))
            bases += len(seq)
            n_reads += 1
            if n_reads == 20_000:
                break
    assert 0 < mismatches / bases < 0.005  # errors exist but are rare


def test_fastq_is_the_bam_as_sequenced(sim):
    """A minus-strand read appears reverse-complemented in its FASTQ, as a sequencer would give it."""
    names, seqs, _ = _read_fastq(sim["r1"])
    r1 = {n[1:].split()[0]: s for n, s in zip(names[:5000], seqs[:5000])}
    checked = 0
    with pysam.AlignmentFile(sim["bam"]) as bam:
        for r in bam.fetch(until_eof=True):
            if r.is_read1 and r.query_name in r1:
                seq = r.get_forward_sequence()
                assert seq == r1[r.query_name]
                checked += 1
    assert checked == 5000


def test_deterministic_for_a_seed(tmp_path):
    def digest(folder):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir())}

    simulate(tmp_path / "a", seed=3, **SMALL)
    simulate(tmp_path / "b", seed=3, **SMALL)
    simulate(tmp_path / "c", seed=4, **SMALL)
    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert a == b
    assert a["sim.bam"] != c["sim.bam"]


@pytest.mark.skipif(shutil.which("bowtie2") is None, reason="bowtie2 not installed")
def test_bowtie2_aligns_reads_back(tmp_path):
    out = simulate(tmp_path / "sim", seed=1, **SMALL)
    index = tmp_path / "idx"
    subprocess.run(["bowtie2-build", "-q", "--threads", "1", out["genome"], str(index)], check=True)
    run = subprocess.run(["bowtie2", "-p", "1", "-X", "600", "--no-unal", "-x", str(index),
                          "-1", out["r1"], "-2", out["r2"], "-S", str(tmp_path / "out.sam")],
                         capture_output=True, text=True, check=True)
    rate = float(run.stderr.strip().splitlines()[-1].split("%")[0])
    assert rate > 95, run.stderr
    # bowtie2 puts reads where the simulator did
    truth = {(r.query_name, r.is_read1): r.reference_start for r in pysam.AlignmentFile(out["bam"]).fetch()}
    aligned = [(r.query_name, r.is_read1, r.reference_start) for r in pysam.AlignmentFile(str(tmp_path / "out.sam"))
               if not r.is_unmapped and not r.is_secondary]
    same = np.mean([truth[(n, r1)] == pos for n, r1, pos in aligned])
    assert same > 0.9


def test_cli_simulate(tmp_path):
    from atacdenoise.cli import main

    assert main(["simulate", "--outdir", str(tmp_path), "--chroms", "1", "--chrom-length", "200000",
                 "--fragments", "3000", "--prefix", "demo"]) == 0
    assert (tmp_path / "demo.bam.bai").exists() and (tmp_path / "demo_R2.fastq.gz").exists()


def test_bad_parameters_are_input_errors(tmp_path):
    from atacdenoise.errors import InputError

    with pytest.raises(InputError, match="chrom-length"):
        simulate(tmp_path, chrom_length=1000)
    with pytest.raises(InputError, match="frip"):
        simulate(tmp_path, frip=1.5, **SMALL)
    assert not list(tmp_path.iterdir())
