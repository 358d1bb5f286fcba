"""ALIGN: the simulator's reads go back to where they came from, sorted, indexed, duplicates flagged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pysam
import pytest

from atacdenoise.cli_pipeline import add_align_parser
from atacdenoise.errors import InputError
from atacdenoise.io.align import align, build_index, find_index_prefix
from conftest import run_subcommand

pytestmark = pytest.mark.skipif(not (shutil.which("bowtie2") and shutil.which("samtools")),
                                reason="bowtie2 and samtools are needed (apt-get install bowtie2 samtools)")


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> dict[str, str]:
    from atacdenoise.tracks.simulate import simulate

    return simulate(tmp_path_factory.mktemp("sim"), n_chroms=1, chrom_length=60_000, n_fragments=4_000, seed=7)


@pytest.fixture(scope="module")
def paired(sim, tmp_path_factory):
    out = tmp_path_factory.mktemp("aligned") / "deep.bam"
    return align(sim["r1"], out, fastq2=sim["r2"], fasta=sim["genome"], threads=2)


def run_cli(argv: list[str]) -> None:
    run_subcommand(add_align_parser, argv)


def test_paired_reads_align_sorted_indexed_and_deduplicated(sim, paired):
    assert paired.alignment_rate > 95
    with pysam.AlignmentFile(paired.bam) as bam:
        assert bam.header["HD"]["SO"] == "coordinate"
        assert bam.header["RG"][0]["SM"] == "deep"
        reads = list(bam.fetch())  # fetch needs the index
    keys = [(r.reference_id, r.reference_start) for r in reads]
    assert keys == sorted(keys)
    assert sum(r.is_proper_pair for r in reads) > 0.95 * len(reads)
    # The simulator flags its PCR copies; markdup must find at least those (plus chance collisions).
    with pysam.AlignmentFile(sim["bam"]) as truth:
        true_dups = sum(r.is_duplicate for r in truth.fetch(until_eof=True))
    flagged = sum(r.is_duplicate for r in reads)
    assert flagged == paired.duplicates
    assert true_dups * 0.95 <= flagged <= true_dups * 1.5 + 20


def five_prime(read) -> tuple[str, int]:
    """Where the read starts on the genome (its 5' end, the Tn5 insertion): adapter trimming may shorten its
    3' end (even one adapter-like base, as Trim Galore does), never this."""
    return read.reference_name, read.reference_end if read.is_reverse else read.reference_start


def test_reads_land_where_they_were_simulated(sim, paired):
    with pysam.AlignmentFile(sim["bam"]) as truth:
        where = {(r.query_name, r.is_read1): five_prime(r) for r in truth.fetch(until_eof=True)}
    with pysam.AlignmentFile(paired.bam) as bam:
        confident = [r for r in bam.fetch() if r.mapping_quality >= 30]
        same = sum(where[(r.query_name, r.is_read1)] == five_prime(r) for r in confident)
    assert len(confident) > 0.8 * 2 * 4_000
    assert same > 0.99 * len(confident)


def test_index_is_newer_than_bam(paired):
    assert Path(paired.index).stat().st_mtime_ns >= Path(paired.bam).stat().st_mtime_ns


def test_single_end_with_a_prebuilt_index_folder(sim, tmp_path):
    prefix = build_index(sim["genome"], tmp_path / "idx")
    assert find_index_prefix(tmp_path / "idx") == prefix == str(tmp_path / "idx" / "genome")
    result = align(sim["r1"], tmp_path / "single.bam", index=tmp_path / "idx", sample="s1")
    assert result.alignment_rate > 95
    with pysam.AlignmentFile(result.bam) as bam:
        reads = list(bam.fetch())
    assert reads and not any(r.is_paired for r in reads)
    assert result.duplicates > 0


def test_cli_align_and_build_index(sim, tmp_path, capsys):
    run_cli(["align", "--fasta", sim["genome"], "--build-index", str(tmp_path / "index")])
    assert list((tmp_path / "index").glob("*.1.bt2"))
    run_cli(["align", "--fastq1", sim["r1"], "--fastq2", sim["r2"], "--index", str(tmp_path / "index"),
             "--output", str(tmp_path / "cli.bam"), "--threads", "2"])
    assert (tmp_path / "cli.bam.bai").exists()
    assert "% aligned" in capsys.readouterr().err


def test_bad_inputs_name_the_file_and_leave_nothing(sim, tmp_path):
    out = tmp_path / "out" / "x.bam"
    with pytest.raises(InputError, match="does not exist") as err:
        align(tmp_path / "missing_R1.fastq.gz", out, fasta=sim["genome"])
    assert "missing_R1" in err.value.path
    with pytest.raises(InputError, match="--index.*--fasta"):
        align(sim["r1"], out)
    with pytest.raises(InputError, match="no bowtie2 index"):
        align(sim["r1"], out, index=tmp_path)
    garbage = tmp_path / "garbage.fastq"
    garbage.write_text("this is not\na FASTQ file\n")
    with pytest.raises(InputError) as err:
        align(garbage, out, fasta=sim["genome"])
    assert err.value.path == str(garbage) and "failed" in err.value.problem
    leftovers = [p.name for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".bam", ".bai")]
    assert leftovers == []
