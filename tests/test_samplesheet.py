"""Samplesheet validation: the schema in assets/, cross-row checks, and the `samplesheet check` command."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from atacdenoise.cli_pipeline import add_samplesheet_parser
from atacdenoise.errors import InputError
from atacdenoise.samplesheet import SCHEMA_PATH, read_libraries, read_samplesheet, samplesheet_problems
from conftest import run_subcommand

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
    run_subcommand(add_samplesheet_parser, argv)


def test_schema_is_valid_draft_2020_12():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["items"]["properties"]) == {"sample", "fastq_1", "fastq_2", "replicate", "bam"}
    # what nf-schema's samplesheetToList puts in meta (main.nf builds meta.id from them, as libraryId)
    assert {c: p["meta"] for c, p in schema["items"]["properties"].items() if "meta" in p} == {
        "sample": ["sample"], "replicate": ["replicate"]}


def test_paired_single_free_bam_rows_are_read(files):
    sheet = write_sheet(files, "a,a_R1.fastq.gz,a_R2.fastq.gz,\nb,b_R1.fq.gz,b_R2.fq.gz,\nd,,,d.bam\n")
    samples = read_samplesheet(sheet, base_dir=files)
    assert [(s.id, s.kind) for s in samples] == [("a", "paired"), ("b", "paired"), ("d", "bam")]
    assert samples[2].bam == "d.bam" and samples[2].fastq_1 is None


def test_shipped_test_samplesheet_validates_against_simulated_files(tmp_path):
    """assets/samplesheet_test.csv points at what `atacdenoise simulate --outdir test_data` writes."""
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


def test_fastq_and_bam_lanes_of_one_sample_name_the_row_and_the_first_lane(files):
    """A repeated sample is a lane now (issue 16); a BAM lane beside FASTQ lanes is refused, naming both lines."""
    sheet = write_sheet(files, "a,a_R1.fastq.gz,a_R2.fastq.gz,\nb,b_R1.fq.gz,b_R2.fq.gz,\na,,,d.bam\n")
    problems = samplesheet_problems(sheet, base_dir=files)
    assert problems == ["line 4 (sample 'a'): BAM lane, but the library's first lane (line 2) is paired-end FASTQ: "
                        "the lanes of one sample and replicate are all paired-end, all single-end or all BAM"]


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
    with pytest.raises(InputError, match="line 3 .*BAM lane, but the library's first lane \\(line 2\\)"):
        run_check(["samplesheet", "check", str(bad), "--base-dir", str(files)])
    with pytest.raises(InputError, match="samplesheet does not exist"):
        run_check(["samplesheet", "check", str(files / "nope.csv")])


# ---------------------------------------------------------------- nf-core/atacseq sheets: lanes and replicates

NFCORE_HEADER = "sample,fastq_1,fastq_2,replicate\n"


@pytest.fixture()
def lanes(tmp_path: Path) -> Path:
    for name in ("ctl_L1_R1.fastq.gz", "ctl_L1_R2.fastq.gz", "ctl_L2_R1.fastq.gz", "ctl_L2_R2.fastq.gz",
                 "ctl2_R1.fastq.gz", "ctl2_R2.fastq.gz", "trt_R1.fastq.gz", "trt_R2.fastq.gz", "se.fastq.gz",
                 "x1.bam", "x2.bam"):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def test_nf_core_atacseq_sheet_lanes_and_replicates(lanes):
    """nf-core/atacseq's columns: two lanes of CONTROL rep 1 make one library, rep 2 and TREATMENT their own."""
    sheet = write_sheet(lanes, "CONTROL,ctl_L1_R1.fastq.gz,ctl_L1_R2.fastq.gz,1\n"
                               "CONTROL,ctl_L2_R1.fastq.gz,ctl_L2_R2.fastq.gz,1\n"
                               "CONTROL,ctl2_R1.fastq.gz,ctl2_R2.fastq.gz,2\n"
                               "TREATMENT,trt_R1.fastq.gz,trt_R2.fastq.gz,1\n", header=NFCORE_HEADER)
    assert samplesheet_problems(sheet, base_dir=lanes) == []
    rows = read_samplesheet(sheet, base_dir=lanes)
    assert [(r.id, r.replicate, r.line) for r in rows] == [("CONTROL", 1, 2), ("CONTROL", 1, 3), ("CONTROL", 2, 4),
                                                          ("TREATMENT", 1, 5)]
    libraries = read_libraries(sheet, base_dir=lanes)
    assert [(lib.id, lib.sample, lib.replicate, lib.kind, lib.lines) for lib in libraries] == [
        ("CONTROL_REP1", "CONTROL", 1, "paired", [2, 3]), ("CONTROL_REP2", "CONTROL", 2, "paired", [4]),
        ("TREATMENT_REP1", "TREATMENT", 1, "paired", [5])]
    assert libraries[0].files("fastq_1") == ["ctl_L1_R1.fastq.gz", "ctl_L2_R1.fastq.gz"]
    assert not libraries[0].single_end


def test_lanes_without_a_replicate_column_and_bam_lanes(lanes):
    sheet = write_sheet(lanes, "a,ctl_L1_R1.fastq.gz,ctl_L1_R2.fastq.gz,\na,ctl_L2_R1.fastq.gz,ctl_L2_R2.fastq.gz,\n"
                               "x,,,x1.bam\nx,,,x2.bam\n")
    libraries = read_libraries(sheet, base_dir=lanes)
    assert [(lib.id, lib.replicate, lib.kind, len(lib.lanes)) for lib in libraries] == [
        ("a", None, "paired", 2), ("x", None, "bam", 2)]
    assert libraries[1].files("bam") == ["x1.bam", "x2.bam"]


def test_a_sample_with_single_and_paired_lanes_is_refused_with_its_rows(lanes):
    sheet = write_sheet(lanes, "a,ctl_L1_R1.fastq.gz,ctl_L1_R2.fastq.gz,1\nb,trt_R1.fastq.gz,trt_R2.fastq.gz,1\n"
                               "a,se.fastq.gz,,1\n", header=NFCORE_HEADER)
    problems = samplesheet_problems(sheet, base_dir=lanes)
    assert problems == ["line 4 (sample 'a'): single-end FASTQ lane, but the library's first lane (line 2) is "
                        "paired-end FASTQ: the lanes of one sample and replicate are all paired-end, all single-end "
                        "or all BAM"]
    # another replicate is another library: still one sheet of paired and single-end FASTQ, refused as before
    other = write_sheet(lanes, "a,ctl_L1_R1.fastq.gz,ctl_L1_R2.fastq.gz,1\na,se.fastq.gz,,2\n", header=NFCORE_HEADER)
    assert "mixed single-end (first on line 3) and paired-end (first on line 2)" in samplesheet_problems(
        other, base_dir=lanes)[0]


@pytest.mark.parametrize("row, expected", [
    ("a,ctl_L1_R1.fastq.gz,ctl_L1_R2.fastq.gz,0", "replicate must be a whole number"),
    ("a,ctl_L1_R1.fastq.gz,ctl_L1_R2.fastq.gz,one", "replicate must be a whole number"),
    ("a,ctl_L1_R1.fastq.gz,ctl_L1_R2.fastq.gz,1.5", "replicate must be a whole number"),
])
def test_bad_replicates(lanes, row, expected):
    problems = samplesheet_problems(write_sheet(lanes, row + "\n", header=NFCORE_HEADER), base_dir=lanes)
    assert any(p.startswith("line 2") and expected in p for p in problems), problems


def test_the_same_file_twice_is_refused(lanes):
    sheet = write_sheet(lanes, "a,ctl_L1_R1.fastq.gz,ctl_L1_R2.fastq.gz,1\na,ctl_L1_R1.fastq.gz,ctl_L2_R2.fastq.gz,1\n",
                        header=NFCORE_HEADER)
    assert samplesheet_problems(sheet, base_dir=lanes) == [
        "line 3 (sample 'a'): fastq_1 ctl_L1_R1.fastq.gz is already given on line 2"]
