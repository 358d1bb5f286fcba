"""Samplesheet validation: the schema in assets/, cross-row checks, and the `samplesheet check` command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jsonschema
import pytest

from atacdenoise.cli_pipeline import add_samplesheet_parser
from atacdenoise.errors import InputError
from atacdenoise.samplesheet import SCHEMA_PATH, read_samplesheet, samplesheet_problems

REPO = Path(__file__).resolve().parents[1]
HEADER = "sample,fastq_1,fastq_2,bam\n"


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    """A folder with empty stand-ins for reads (only existence is checked here)."""
    for name in ("a_R1.fastq.gz", "a_R2.fastq.gz", "b_R1.fq.gz", "b_R2.fq.gz", "c.fastq.gz", "d.bam"):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def write_sheet(folder: Path, body: str, header: str = HEADER) -> Path:
    path = folder / "samples.csv"
    path.write_text(header + body)
    return path


def run_check(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="atacdenoise")
    add_samplesheet_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.func(args)


def test_schema_is_valid_draft_2020_12():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["items"]["properties"]) == {"sample", "fastq_1", "fastq_2", "bam"}


def test_paired_single_free_bam_rows_are_read(files):
    sheet = write_sheet(files, "a,a_R1.fastq.gz,a_R2.fastq.gz,\nb,b_R1.fq.gz,b_R2.fq.gz,\nd,,,d.bam\n")
    samples = read_samplesheet(sheet, base_dir=files)
    assert [(s.id, s.kind) for s in samples] == [("a", "paired"), ("b", "paired"), ("d", "bam")]
    assert samples[2].bam == "d.bam" and samples[2].fastq_1 is None


def test_shipped_test_samplesheet_validates_against_simulated_files(tmp_path):
    """assets/samplesheet_test.csv points at what `atacdenoise simulate --out-dir test_data` writes."""
    from atacdenoise.tracks.simulate import simulate

    simulate(tmp_path / "test_data", n_chroms=1, chrom_length=20_000, n_fragments=500, seed=3)
    samples = read_samplesheet(REPO / "assets" / "samplesheet_test.csv", base_dir=tmp_path)
    assert {s.kind for s in samples} == {"paired", "bam"}
    # and it fails, naming the files, where they are absent
    with pytest.raises(InputError, match="fastq_1 file does not exist"):
        read_samplesheet(REPO / "assets" / "samplesheet_test.csv", base_dir=tmp_path / "elsewhere")


@pytest.mark.parametrize("header, body, expected", [
    ("sample,fastq_1,fastq_2\n", "", "no samples"),
    ("fastq_1,fastq_2,bam\n", "a_R1.fastq.gz,a_R2.fastq.gz,\n", "missing column 'sample'"),
    ("sample\n", "a\n", "missing columns: need fastq_1"),
    ("sample,fastq_1,fastq_2,bam,notes\n", "a,a_R1.fastq.gz,a_R2.fastq.gz,,x\n", "unknown columns notes"),
])
def test_header_problems(files, header, body, expected):
    with pytest.raises(InputError, match=expected) as err:
        read_samplesheet(write_sheet(files, body, header), base_dir=files)
    assert err.value.path.endswith("samples.csv")


def test_duplicate_sample_names_the_row_and_the_first_use(files):
    sheet = write_sheet(files, "a,a_R1.fastq.gz,a_R2.fastq.gz,\nb,b_R1.fq.gz,b_R2.fq.gz,\na,,,d.bam\n")
    problems = samplesheet_problems(sheet, base_dir=files)
    assert problems == ["line 4 (sample 'a'): duplicate sample id, already used on line 2"]


def test_missing_files_are_named_with_their_row(files):
    sheet = write_sheet(files, "a,a_R1.fastq.gz,gone_R2.fastq.gz,\nd,,,nothere.bam\n")
    problems = samplesheet_problems(sheet, base_dir=files)
    assert len(problems) == 2
    assert problems[0].startswith("line 2 (sample 'a'): fastq_2 file does not exist") and "gone_R2" in problems[0]
    assert problems[1].startswith("line 3 (sample 'd'): bam file does not exist")
    assert samplesheet_problems(sheet, base_dir=files, check_files=False) == []


def test_mixed_single_and_paired_rows(files):
    sheet = write_sheet(files, "a,a_R1.fastq.gz,a_R2.fastq.gz,\nc,c.fastq.gz,,\n")
    problems = samplesheet_problems(sheet, base_dir=files)
    assert len(problems) == 1 and "mixed single-end (first on line 3) and paired-end (first on line 2)" in problems[0]


@pytest.mark.parametrize("row, expected", [
    ("a,a_R1.fastq.gz,,d.bam", "either fastq_1"),              # FASTQ and BAM in one row
    ("a,,,", "either fastq_1"),                                  # neither
    ("a,,a_R2.fastq.gz,", "fastq_2 given without fastq_1"),
    ("a b,a_R1.fastq.gz,a_R2.fastq.gz,", "sample must be a name"),
    ("a,a_R1.txt,,", "fastq_1 must be a FASTQ path"),
    ("a,,,d.cram", "bam must be a path ending in .bam"),
    ("a,a_R1.fastq.gz", "2 fields, header has 4"),
])
def test_row_problems_name_the_line(files, row, expected):
    problems = samplesheet_problems(write_sheet(files, row + "\n"), base_dir=files)
    assert any(p.startswith("line 2") and expected in p for p in problems), problems


def test_every_problem_is_reported_at_once(files):
    sheet = write_sheet(files, "a,a_R1.fastq.gz,a_R2.fastq.gz,\na,,,missing.bam\nx,,,d.txt\n")
    problems = samplesheet_problems(sheet, base_dir=files)
    assert [p.split(":")[0] for p in problems] == ["line 3 (sample 'a')", "line 3 (sample 'a')", "line 4 (sample 'x')"]


def test_remote_paths_are_not_checked_locally(files):
    sheet = write_sheet(files, "a,s3://bucket/a_R1.fastq.gz,https://host/a_R2.fastq.gz,\n")
    assert samplesheet_problems(sheet, base_dir=files) == []


def test_cli_check(files, capsys):
    good = write_sheet(files, "a,a_R1.fastq.gz,a_R2.fastq.gz,\nd,,,d.bam\n")
    run_check(["samplesheet", "check", str(good), "--base-dir", str(files)])
    assert "2 samples OK (paired: 1, bam: 1)" in capsys.readouterr().err
    bad = write_sheet(files, "a,a_R1.fastq.gz,a_R2.fastq.gz,\na,,,d.bam\n")
    with pytest.raises(InputError, match="line 3 .*duplicate sample id"):
        run_check(["samplesheet", "check", str(bad), "--base-dir", str(files)])
    with pytest.raises(InputError, match="samplesheet does not exist"):
        run_check(["samplesheet", "check", str(files / "nope.csv")])
