"""A wheel, installed for real (not editable), denoises with the bundled model it carries, checks samplesheets
with the schema it carries and runs the pipeline's steps without the repository's bin/.

The models' home is the repository's registry/models/ and the samplesheet schema's is assets/, both outside the
package; setup.py copies them into the wheel. These tests build the wheel from a copy of the sources (no bin/),
install it into a fresh virtualenv (its dependencies come from this machine's site-packages: no download) and
run its own `atacdenoise` from a folder that has nothing to do with the repository.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from atacdenoise.bundled import REPOSITORY, REPOSITORY_MODELS, assets_dir, bundled_models_dir
from atacdenoise.pipeline import BIN_DIR, WRAPPED_SUBCOMMANDS

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "pyscripts", "registry/models", "assets"]


def test_a_source_checkout_reads_the_repository_folders():
    """No copy of the models or the schema inside the package source: the repository folders are the only ones."""
    assert bundled_models_dir() == REPOSITORY_MODELS
    assert sorted(REPOSITORY_MODELS.glob("*.onnx"))
    assert assets_dir() == REPOSITORY / "assets" and (assets_dir() / "schema_input.json").is_file()


def test_the_wrapper_table_runs_what_each_bin_wrapper_runs():
    """From a wheel the pipeline calls WRAPPED_SUBCOMMANDS instead of bin/: the same subcommand for every wrapper."""
    wrapped = {}
    for wrapper in sorted(BIN_DIR.glob("atac-*")):
        command = [line for line in wrapper.read_text().splitlines() if line.startswith("exec ")]
        assert len(command) == 1 and command[0].endswith(' "$@"'), wrapper
        program, *subcommand = command[0].removeprefix("exec ").removesuffix(' "$@"').split()
        assert program == "atacdenoise", wrapper
        wrapped[wrapper.name] = tuple(subcommand)
    assert wrapped == WRAPPED_SUBCOMMANDS


def run(command: list, cwd: Path, returncode: int = 0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the venv's own package, not pyscripts/
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == returncode, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A wheel built from a copy of the sources and the venv it is installed in (non-editable)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", source,
         "-w", root / "wheel"], cwd=root)
    wheel = next((root / "wheel").glob("atacdenoise-*.whl"))
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", venv], cwd=root)
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], cwd=root)
    return {"root": root, "wheel": wheel, "venv": venv}


@pytest.mark.slow
def test_the_wheel_carries_every_bundled_model_and_its_card_and_the_schema(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    shipped = {Path(name).name for name in names if name.startswith("atacdenoise/registry/models/")}
    expected = {p.name for p in REPOSITORY_MODELS.iterdir() if p.suffix in (".onnx", ".md")}
    assert shipped == expected
    assert [name for name in names if name.startswith("atacdenoise/assets/")] == [
        "atacdenoise/assets/schema_input.json"]
    assert not any(".data/scripts/" in name for name in names)  # no bin/ wrappers: the pipeline needs none


@pytest.mark.slow
def test_an_installed_wheel_denoises_with_its_bundled_model(installed):
    venv, elsewhere = installed["venv"], installed["root"] / "elsewhere"
    elsewhere.mkdir()
    where = run([venv / "bin" / "python", "-c",
                 "import atacdenoise.denoise as d; print(d.BUNDLED_MODEL); print(d.BUNDLED_COUNTS_MODEL)"],
                cwd=elsewhere).stdout.split()
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert [Path(p).parent for p in where] == [site / "atacdenoise" / "registry" / "models"] * 2

    rng = np.random.default_rng(0)
    positions = np.sort(np.concatenate([rng.integers(0, 250_000, 3000), rng.integers(120_000, 120_400, 600)]))
    with gzip.open(elsewhere / "sample.insertions.bed.gz", "wt") as out:
        out.write("".join(f"chrA\t{p}\t{p + 1}\t.\t0\t+\n" for p in positions))
    (elsewhere / "chrom.sizes").write_text("chrA\t250000\n")
    result = run([venv / "bin" / "atacdenoise", "denoise", "--input", "sample.insertions.bed.gz",
                  "--chrom-sizes", "chrom.sizes", "--out-prefix", "out/sample"], cwd=elsewhere)
    assert "atac-denoiser-counts.onnx" in result.stderr  # no annotation files given: the counts-only model

    import pyBigWig

    with pyBigWig.open(str(elsewhere / "out" / "sample.denoised.bw")) as bw:
        assert bw.chroms() == {"chrA": 250_000}
        assert bw.stats("chrA", 119_000, 121_500, type="max")[0] > bw.stats("chrA", 200_000, 250_000)[0] > 0
    assert (elsewhere / "out" / "sample.peakprob.bw").stat().st_size > 0


@pytest.mark.slow
def test_an_installed_wheel_checks_a_samplesheet_with_its_schema(installed):
    venv, elsewhere = installed["venv"], installed["root"] / "sheet"
    elsewhere.mkdir()
    for name in ("a_R1.fastq.gz", "a_R2.fastq.gz", "b.bam"):
        (elsewhere / name).write_bytes(b"")
    (elsewhere / "samples.csv").write_text("sample,fastq_1,fastq_2,bam\na,a_R1.fastq.gz,a_R2.fastq.gz,\nb,,,b.bam\n")
    result = run([venv / "bin" / "atacdenoise", "samplesheet", "check", "samples.csv"], cwd=elsewhere)
    assert "2 samples OK (paired: 1, bam: 1)" in result.stderr
    # the shipped schema is the one read: a sample name with a space breaks its pattern, told by its errorMessage
    (elsewhere / "bad.csv").write_text("sample,fastq_1,fastq_2,bam\na b,a_R1.fastq.gz,a_R2.fastq.gz,\n")
    bad = run([venv / "bin" / "atacdenoise", "samplesheet", "check", "bad.csv"], cwd=elsewhere, returncode=2)
    assert "bad.csv: line 2 (sample 'a b'): sample must be a name of letters, digits" in bad.stderr


# Run by the wheel's interpreter from an unrelated folder: the test profile's whole plan (train, register,
# denoise) calls the installed CLI with arguments it accepts, and its first steps, SIMULATE -> BOWTIE2_BUILD ->
# ALIGN -> FILTER_SHIFT, run for real on a tiny simulation.
# The whole profile is too long for a test (it trains a model); tests/test_pipeline_local.py runs it from the
# repository at a smaller size.
PLAN_CHECK = """
import logging, sys
from pathlib import Path
from atacdenoise.cli import build_parser
from atacdenoise.pipeline import DemoSettings, denoise_steps, registry_steps, run_steps, train_steps

out, settings = Path("demo"), DemoSettings(chrom_length=100_000, fragments=2_000)
plan = (train_steps(out, settings) + registry_steps(out, settings.model_name, "http://127.0.0.1:5000")
        + denoise_steps(out, settings, f"models:/{settings.model_name}@champion", "http://127.0.0.1:5000"))
for step in plan:
    argv = [str(a) for a in step.argv]
    assert argv[:3] == [sys.executable, "-m", "atacdenoise.cli"], argv
    build_parser().parse_args(argv[3:])  # an unknown subcommand or option exits 2
    print(step.name, argv[3])
logging.basicConfig(level=logging.INFO)
run_steps(plan[:4], out / "logs")
"""


@pytest.mark.slow
@pytest.mark.skipif(not all(shutil.which(tool) for tool in ("bowtie2", "samtools", "cutadapt")),
                    reason="ALIGN needs bowtie2, samtools and cutadapt")
def test_an_installed_wheel_runs_the_pipeline_steps_without_bin(installed):
    venv, elsewhere = installed["venv"], installed["root"] / "pipeline"
    elsewhere.mkdir()
    result = run([venv / "bin" / "python", "-c", PLAN_CHECK], cwd=elsewhere)
    steps = dict(line.split() for line in result.stdout.splitlines())
    assert steps["SIMULATE"] == "simulate" and steps["NASH_SEARCH"] == "search" and steps["REPORT"] == "report"
    assert steps["REGISTER_MODEL"] == "registry" and steps["DENOISE"] == "denoise"
    logs = sorted((elsewhere / "demo" / "logs").glob("*.done"))
    assert [log.stem for log in logs] == ["01_simulate", "02_bowtie2_build", "03_align", "04_filter_shift"]
    command = (elsewhere / "demo" / "logs" / "01_simulate.log").read_text().split()[:4]
    assert command == [str(venv / "bin" / "python"), "-m", "atacdenoise.cli", "simulate"]
    with gzip.open(elsewhere / "demo" / "filter_shift" / "sim.insertions.bed.gz", "rt") as insertions:
        chroms = [line.split("\t")[0] for line in insertions]
    assert len(chroms) > 2_000 and set(chroms) <= {"chr1", "chr2"}  # 2,000 pairs, two insertions each; no chrM
