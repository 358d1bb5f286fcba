"""``atacdenoise pipeline --samplesheet``: which steps a sheet gives, which model denoises, and bad input.

The full run on real yeast reads is tests/test_real_genome.py (needs ../shared/data).
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from atacdenoise.errors import InputError
from atacdenoise.pipeline import (SampleSettings, bundled_model_for, genome_files, run_samplesheet,
                                  sample_steps)
from atacdenoise.samplesheet import Sample


def write_fasta(path: Path, lengths: dict[str, int], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    with gzip.open(path, "wt") as fh:
        for chrom, n in lengths.items():
            fh.write(f">{chrom}\n{''.join(rng.choice(list('ACGT'), size=n))}\n")
    return path


def test_fastq_rows_are_aligned_and_bam_rows_start_at_filter_shift(tmp_path):
    s = SampleSettings(fasta="g.fa", gtf="genes.gff3", model="m.onnx", fraction=0.1, threads=2)
    fastq = sample_steps(tmp_path, Sample("a", "r1.fq.gz", "r2.fq.gz"), tmp_path / "sizes", tmp_path / "idx", "m.onnx", s)
    bam = sample_steps(tmp_path, Sample("b", bam="b.bam"), tmp_path / "sizes", tmp_path / "idx", "m.onnx", s)
    names = [step.name for step in fastq]
    assert names[:3] == ["ALIGN.a", "FILTER_SHIFT.a", "CALL_PEAKS.a"]
    assert {"SUBSAMPLE.a", "DENOISE.a", "QC.a", "QC_SHALLOW.a", "QC_DENOISED.a"} <= set(names)
    assert bam[0].name == "FILTER_SHIFT.b" and not any(step.name.startswith("ALIGN") for step in bam)
    argv = {step.name: [str(a) for a in step.argv] for step in fastq}
    assert argv["ALIGN.a"][argv["ALIGN.a"].index("--fastq2") + 1] == "r2.fq.gz"
    assert argv["SUBSAMPLE.a"][argv["SUBSAMPLE.a"].index("--fraction") + 1] == "0.1"
    denoise = argv["DENOISE.a"]
    assert denoise[denoise.index("--model") + 1] == "m.onnx" and "tss=genes.gff3" in denoise
    assert denoise[denoise.index("--input") + 1].endswith("a.sub0.1.insertions.bed.gz")


def test_the_bundled_model_is_chosen_only_for_its_own_genome(tmp_path):
    pytest.importorskip("onnx")
    fasta = write_fasta(tmp_path / "other.fa.gz", {"chrI": 5_000, "chrM": 1_000})
    sizes, md5 = genome_files(fasta, tmp_path / "out")
    assert sizes.read_text() == "chrI\t5000\nchrM\t1000\n"
    assert bundled_model_for(md5) is None
    (tmp_path / "r1.fastq.gz").write_bytes(gzip.compress(b"@r\nACGT\n+\nIIII\n"))
    (tmp_path / "sheet.csv").write_text(f"sample,fastq_1,fastq_2,bam\ns1,{tmp_path / 'r1.fastq.gz'},,\n")
    with pytest.raises(InputError, match="no --model given and no bundled model"):
        run_samplesheet(tmp_path / "run", tmp_path / "sheet.csv", SampleSettings(fasta=str(fasta)))
    assert not (tmp_path / "run").exists()


def test_a_bad_sheet_or_missing_genome_stops_before_any_step(tmp_path):
    (tmp_path / "sheet.csv").write_text("sample,fastq_1,fastq_2,bam\ns1,missing_R1.fastq.gz,,\n")
    with pytest.raises(InputError, match="fastq_1 file does not exist"):
        run_samplesheet(tmp_path / "run", tmp_path / "sheet.csv", SampleSettings(fasta="g.fa"))
    assert not (tmp_path / "run").exists()
    cli = [sys.executable, "-m", "atacdenoise.cli", "pipeline", "--samplesheet", str(tmp_path / "sheet.csv"),
           "--outdir", str(tmp_path / "run")]
    result = subprocess.run(cli, capture_output=True, text=True)
    assert result.returncode == 2 and "needs the genome: add --fasta" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_denoise_chunks_split_each_samples_denoise_and_merge_it_back(tmp_path):
    s = SampleSettings(fasta="g.fa", model="m.onnx", denoise_chunks=3)
    steps = sample_steps(tmp_path, Sample("b", bam="b.bam"), tmp_path / "sizes", tmp_path / "idx", "m.onnx", s)
    names = [step.name for step in steps]
    denoising = names[names.index("DENOISE.b.group1of3"):]
    assert denoising == ["DENOISE.b.group1of3", "DENOISE.b.group2of3", "DENOISE.b.group3of3", "MERGE_DENOISED.b",
                         "QC_DENOISED.b", "REPORT.b"]
    argv = {step.name: [str(a) for a in step.argv] for step in steps}
    groups = [str(tmp_path / "work" / "denoise" / f"b.shallow.group{i}of3") for i in (1, 2, 3)]
    assert [argv[f"DENOISE.b.group{i}of3"][argv[f"DENOISE.b.group{i}of3"].index("--group") + 1]
            for i in (1, 2, 3)] == ["1/3", "2/3", "3/3"]
    assert argv["MERGE_DENOISED.b"][1:] == [*groups, "--out-prefix", str(tmp_path / "denoise" / "b.shallow")]
    assert f"{tmp_path / 'denoise' / 'b.shallow'}.denoised.bw" in argv["REPORT.b"]
