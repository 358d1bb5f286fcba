"""The local runner: every step of main.nf, through bin/, on a small simulated data set.

This is the README demo at a smaller size: simulate -> align -> peaks -> bin ->
subsample -> windows -> NASH search -> ONNX export -> register and promote in a
real local MLflow server -> denoise with models:/NAME@champion -> report.
With genome channels (--gtf, --annotation, --sequence-channels) the training
steps and denoise run again, for real, with a GTF, a BED and the simulated FASTA.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from atacdenoise.errors import InputError
from atacdenoise.io.bigwig import read_bigwig
from atacdenoise.io.narrowpeak import read_peaks
from atacdenoise.pipeline import BIN_DIR, DemoSettings, Step, denoise_steps, run_pipeline, run_steps, train_steps

SMALL = DemoSettings(chrom_length=500_000, fragments=50_000, n_train=128, depths="0.1,1.0",
                     search=("--space", "dilated1d", "--iterations", "1", "--children", "1", "--epochs", "1",
                             "--initial-draws", "1", "--initial-epochs", "2", "--loss", "log-mse", "--device", "cpu"))


@pytest.mark.slow
def test_local_pipeline_trains_registers_and_denoises(tmp_path, caplog):
    with caplog.at_level("INFO", logger="atacdenoise"):
        out = run_pipeline(tmp_path / "demo", settings=SMALL)
    progress = caplog.text
    for step in ("SIMULATE", "ALIGN", "NASH_SEARCH", "REGISTER_MODEL", "DENOISE"):
        assert f"] {step}:" in progress

    history = [json.loads(line) for line in (out / "nash_search" / "history.jsonl").read_text().splitlines()]
    assert len(history) == 1 + 2  # one random draw, then parent + one child
    registered = json.loads(next((out / "logs").glob("*_register_model.log")).read_text().splitlines()[-1])
    assert registered["name"] == "atac-denoiser" and registered["version"] == "1"
    assert_registry_names_the_data(out, registered)

    prefix = out / "denoise" / "sim.shallow"
    denoised = read_bigwig(f"{prefix}.denoised.bw", "chr2")
    probability = read_bigwig(f"{prefix}.peakprob.bw", "chr2")
    assert denoised.size == 500_000 and np.isfinite(denoised).all() and denoised.max() > 0
    assert 0 <= probability.min() and probability.max() <= 1
    read_peaks(f"{prefix}.peaks.narrowPeak")  # parses (it may hold no peak after so short a search)
    # The IGV session opens the shallow input (bgzipped and indexed by SUBSAMPLE) beside the outputs, by
    # paths that hold wherever the results folder goes.
    from test_browser_outputs import assert_session_resolves
    session = assert_session_resolves(Path(f"{prefix}.igv.xml"))
    input_track = f"../subsample/sim.sub{SMALL.fraction:g}.insertions.bed.gz"
    assert [r.get("path") for r in session.iter("Resource")][:3] == [input_track, "sim.shallow.denoised.bw",
                                                                       "sim.shallow.peakprob.bw"]
    assert Path(out / "subsample" / f"sim.sub{SMALL.fraction:g}.insertions.bed.gz.tbi").exists()

    # QC per library: the deep BAM (fragment lengths, duplicates), the shallow twin, and the denoised peaks' FRiP
    deep = json.loads((out / "qc" / "sim.qc.json").read_text())
    shallow = json.loads((out / "qc_shallow" / f"sim.sub{SMALL.fraction:g}.qc.json").read_text())
    denoised_qc = json.loads((out / "qc_denoised" / "sim.shallow.denoised_peaks.qc.json").read_text())
    assert deep["format"] == "bam" and sum(deep["fragment_length_histogram"]) > 0 and 0 < deep["frip"] < 1
    assert shallow["n_insertions"] < deep["n_insertions"] and 0 < shallow["frip"] < 1
    assert denoised_qc["n_insertions"] == shallow["n_insertions"] and 0 <= denoised_qc["frip"] <= 1
    assert (out / "qc" / "sim.atacdenoise_qc_general_mqc.json").exists()


def assert_registry_names_the_data(out, registered: dict) -> None:
    """The search's own training and validation files reach the registry as the run's datasets."""
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{out / 'mlflow' / 'mlflow.db'}"  # the runner's server has stopped: read its database
    client = MlflowClient(store, registry_uri=store)
    version = client.get_model_version(registered["name"], registered["version"])
    assert version.tags["training_data"] == str((out / "windows" / "train.npz").resolve())
    datasets = {tag.value: json.loads(i.dataset.source)["uri"]
                for i in client.get_run(registered["run_id"]).inputs.dataset_inputs for tag in i.tags}
    assert datasets == {"training": str((out / "windows" / "train.npz").resolve()),
                        "validation": str((out / "windows" / "val.npz").resolve())}


def test_a_failing_step_stops_the_run_with_its_log(tmp_path):
    missing = tmp_path / "missing.bam"
    steps = [Step("BIN", [str(BIN_DIR / "atac-bin"), "--input", missing, "--out-prefix", tmp_path / "x"], [tmp_path / "x.bw"]),
             Step("NEVER", ["false"], [])]
    with pytest.raises(InputError, match=r"step BIN failed \(exit 2\).*missing.bam") as err:
        run_steps(steps, tmp_path / "logs")
    assert "01_bin.log" in str(err.value)
    assert not (tmp_path / "logs" / "02_never.log").exists()


def test_only_the_test_profile_runs_locally(tmp_path):
    with pytest.raises(InputError, match="test"):
        run_pipeline(tmp_path, samplesheet="deep.csv")


# ---------------------------------------------------------------- genome channels

def pipeline_args(argv: list[str]):
    import argparse

    from atacdenoise.cli_pipeline import add_pipeline_parser, pipeline_settings

    parser = argparse.ArgumentParser()
    add_pipeline_parser(parser.add_subparsers(dest="command"))
    return pipeline_settings(parser.parse_args(["pipeline", *argv]))


def step_argv(steps: list[Step], name: str) -> list[str]:
    return [str(a) for step in steps if step.name == name for a in step.argv]


def test_without_genome_options_the_demo_commands_are_unchanged(tmp_path):
    settings = pipeline_args(["--outdir", str(tmp_path)])
    assert settings == DemoSettings()
    steps = train_steps(tmp_path, settings) + denoise_steps(tmp_path, settings, "models:/m@champion", None)
    for name in ("WINDOWS", "DENOISE"):
        argv = step_argv(steps, name)
        assert argv and "--fasta" not in argv and "--annotation" not in argv, name


def write_annotations(folder: Path, chrom_length: int) -> tuple[Path, Path]:
    """A GTF of genes every 20 kb and a BED of CpG-island-like intervals on the simulated chr1/chr2."""
    folder.mkdir(parents=True, exist_ok=True)
    gtf, bed = folder / "genes.gtf", folder / "cpg.bed"
    gtf.write_text("".join(f'{c}\tsim\tgene\t{s + 1}\t{s + 2_000}\t.\t{"+-"[i % 2]}\t.\tgene_id "{c}g{i}";\n'
                           for c in ("chr1", "chr2") for i, s in enumerate(range(5_000, chrom_length - 5_000, 20_000))))
    bed.write_text("".join(f"{c}\t{s}\t{s + 800}\n" for c in ("chr1", "chr2")
                           for s in range(4_500, chrom_length - 5_000, 20_000)))
    return gtf, bed


def test_genome_options_reach_windows_and_denoise(tmp_path):
    gtf, bed = write_annotations(tmp_path / "ann", 500_000)
    settings = pipeline_args(["--outdir", str(tmp_path), "--gtf", str(gtf), "--annotation", f"cpg_islands={bed}",
                              "--annotation", f"blacklist={bed}", "--sequence-channels"])
    assert settings.annotations == (f"cpg_islands={bed}", f"blacklist={bed}") and settings.sequence_channels
    genome = ["--fasta", str(tmp_path / "simulate" / "genome.fa"), "--annotation", f"tss={gtf}",
              "--annotation", f"cpg_islands={bed}", "--annotation", f"blacklist={bed}"]
    steps = train_steps(tmp_path, settings) + denoise_steps(tmp_path, settings, "model.onnx", None)
    for name in ("WINDOWS", "DENOISE"):
        argv = step_argv(steps, name)
        assert argv[-len(genome):] == genome, name
    for name in ("NASH_SEARCH", "EXPORT_ONNX", "REPORT"):  # they read the channels from the data or need none
        assert "--annotation" not in step_argv(steps, name)
    for name in ("QC", "QC_SHALLOW", "QC_DENOISED"):  # --gtf gives QC its TSSs
        argv = step_argv(steps, name)
        assert argv[argv.index("--gtf") + 1] == str(gtf) and "--peaks" in argv, name
    assert "--gtf" not in step_argv(train_steps(tmp_path, DemoSettings()), "QC")
    annotation_only = DemoSettings(annotations=(f"cpg_islands={bed}",))
    assert "--fasta" not in step_argv(train_steps(tmp_path, annotation_only), "WINDOWS")


@pytest.mark.parametrize("argv, message", [
    (["--gtf", "GTF", "--annotation", "tss=GTF"], "--gtf is the annotation tss"),
    (["--annotation", "BED"], "NAME=FILE"),
    (["--annotation", "cpg_islands=BED", "--annotation", "cpg_islands=BED"], "given twice"),
    (["--annotation", "sequence=BED"], "--fasta"),
    (["--gtf", "missing.gtf"], "does not exist"),
])
def test_bad_genome_options_stop_the_run_before_any_step(tmp_path, argv, message):
    gtf, bed = write_annotations(tmp_path / "ann", 100_000)
    argv = [a.replace("GTF", str(gtf)).replace("BED", str(bed)) for a in argv]
    with pytest.raises(InputError, match=message):
        run_pipeline(tmp_path / "demo", settings=pipeline_args(["--outdir", str(tmp_path), *argv]))
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
def test_local_steps_train_and_denoise_with_genome_channels(tmp_path):
    """WINDOWS -> NASH_SEARCH -> EXPORT_ONNX and DENOISE run for real with a GTF, a BED and the simulated FASTA."""
    from atacdenoise.denoise.onnx_runner import OnnxDenoiser

    gtf, bed = write_annotations(tmp_path / "ann", SMALL.chrom_length)
    settings = dataclasses.replace(SMALL, gtf=str(gtf), annotations=(f"cpg_islands={bed}",), sequence_channels=True)
    out = tmp_path / "demo"
    train = train_steps(out, settings)
    run_steps(train, out / "logs")
    with np.load(out / "windows" / "val.npz") as data:
        meta = json.loads(str(data["meta"]))
    assert [c["name"] for c in meta["channels"]] == ["sequence"] * 3 + ["tss", "cpg_islands"]
    model = out / "export_onnx" / "model.onnx"
    assert len(OnnxDenoiser(model).contract.channel_specs) == 5
    run_steps(denoise_steps(out, settings, str(model), None), out / "logs", len(train) + 1)
    log = (out / "logs" / f"{len(train) + 1:02d}_denoise.log").read_text()
    assert f"--annotation tss={gtf}" in log.splitlines()[0] and "ignored" not in log
    denoised = read_bigwig(out / "denoise" / "sim.shallow.denoised.bw", "chr2")
    assert denoised.size == SMALL.chrom_length and np.isfinite(denoised).all()


# ---------------------------------------------------------------- running again: --resume / --force

def counting_step(name: str, folder: Path, fail_flag: Path | None = None) -> Step:
    """A step that appends a line to ``runs.txt`` and writes ``{name}.out``; fails while ``fail_flag`` exists."""
    fail = f"[ -e {fail_flag} ] && exit 3; " if fail_flag else ""
    script = f"{fail}echo {name} >> {folder / 'runs.txt'}; echo done > {folder / (name + '.out')}"
    return Step(name.upper(), ["sh", "-c", script], [folder / f"{name}.out"])


def test_resume_skips_finished_steps_and_reruns_the_unfinished_one(tmp_path, caplog):
    flag = tmp_path / "fail_now"
    flag.touch()
    steps = [counting_step("first", tmp_path), counting_step("second", tmp_path, fail_flag=flag)]
    with pytest.raises(InputError, match="step SECOND failed"):
        run_steps(steps, tmp_path / "logs")
    flag.unlink()
    with caplog.at_level("INFO", logger="atacdenoise"):
        run_steps(steps, tmp_path / "logs", resume=True)
    assert (tmp_path / "runs.txt").read_text().split() == ["first", "second"]  # first ran once
    assert "FIRST: finished before, skipped" in caplog.text
    (tmp_path / "first.out").unlink()  # an output gone: the step is not finished any more
    run_steps(steps, tmp_path / "logs", resume=True)
    assert (tmp_path / "runs.txt").read_text().split() == ["first", "second", "first"]


def test_a_second_run_into_a_used_folder_says_how_to_go_on(tmp_path):
    from atacdenoise.pipeline import prepare_outdir

    out = tmp_path / "demo"
    prepare_outdir(out, resume=False, force=False)  # a fresh folder is made
    (out / "old.txt").write_text("from an earlier run")
    with pytest.raises(InputError, match="not empty: add --resume .* or --force to start over"):
        prepare_outdir(out, resume=False, force=False)
    prepare_outdir(out, resume=True, force=False)
    assert (out / "old.txt").exists()
    prepare_outdir(out, resume=False, force=True)
    assert out.is_dir() and not any(out.iterdir())
    with pytest.raises(InputError, match="contradict"):
        prepare_outdir(out, resume=True, force=True)


# ---------------------------------------------------------------- scatter and gather: --denoise-chunks N

def test_denoise_chunks_scatter_denoise_and_merge_into_the_single_steps_prefix(tmp_path):
    single = denoise_steps(tmp_path, DemoSettings(), "m.onnx", None)
    chunked = denoise_steps(tmp_path, pipeline_args(["--outdir", str(tmp_path), "--denoise-chunks", "2"]),
                            "m.onnx", None)
    assert [step.name for step in chunked] == ["DENOISE.group1of2", "DENOISE.group2of2", "MERGE_DENOISED",
                                               "QC_DENOISED", "REPORT"]
    prefix, work = tmp_path / "denoise" / "sim.shallow", tmp_path / "work" / "denoise"
    for group in (1, 2):
        argv = step_argv(chunked, f"DENOISE.group{group}of2")
        assert argv[argv.index("--group") + 1] == f"{group}/2"
        assert argv[argv.index("--out-prefix") + 1] == str(work / f"sim.shallow.group{group}of2")
        assert [a for a in argv if a not in ("--group", f"{group}/2")] == [
            str(work / f"sim.shallow.group{group}of2") if a == str(prefix) else a for a in step_argv(single, "DENOISE")]
    assert step_argv(chunked, "MERGE_DENOISED")[1:] == [str(work / "sim.shallow.group1of2"),
                                                        str(work / "sim.shallow.group2of2"), "--out-prefix", str(prefix)]
    merge = next(step for step in chunked if step.name == "MERGE_DENOISED")
    assert merge.outputs == single[0].outputs  # the set the later steps read, where the one step writes it
    for name in ("QC_DENOISED", "REPORT"):
        assert step_argv(chunked, name) == step_argv(single, name), name


@pytest.mark.slow
def test_denoise_chunks_give_the_single_steps_outputs(tmp_path):
    """DENOISE in 2 groups + MERGE_DENOISED, then QC_DENOISED, run by the runner: the same files in denoise/ as
    one DENOISE step (bigWig intervals, narrowPeak bytes, provenance, IGV session) and the same QC."""
    import gzip

    import pyBigWig
    import pysam

    from atacdenoise.denoise import BUNDLED_COUNTS_MODEL
    from atacdenoise.io.chromsizes import write_chrom_sizes
    from test_merge import SIZES, intervals, write_library

    settings = DemoSettings()  # the counts-only bundled model denoises a small library at the demo's paths
    shallow = tmp_path / "subsample" / f"sim.sub{settings.fraction:g}.insertions.bed.gz"
    shallow.parent.mkdir()
    write_library(tmp_path / "library.bed.gz")
    plain = shallow.with_suffix("")  # bgzipped and indexed as SUBSAMPLE leaves it (the IGV session shows it)
    plain.write_bytes(gzip.decompress((tmp_path / "library.bed.gz").read_bytes()))
    assert pysam.tabix_index(str(plain), preset="bed") == str(shallow)
    (tmp_path / "simulate").mkdir()
    write_chrom_sizes(tmp_path / "simulate" / "chrom.sizes", SIZES)

    def run(chunks: int) -> list[str]:
        steps = [step for step in denoise_steps(tmp_path, dataclasses.replace(settings, denoise_chunks=chunks),
                                                str(BUNDLED_COUNTS_MODEL), None) if step.name != "REPORT"]
        run_steps(steps, tmp_path / f"logs{chunks}")
        return [step.name for step in steps]

    assert run(1) == ["DENOISE", "QC_DENOISED"]
    (tmp_path / "denoise").rename(tmp_path / "single")
    (tmp_path / "qc_denoised").rename(tmp_path / "qc_single")
    assert run(2)[2:] == ["MERGE_DENOISED", "QC_DENOISED"]

    single, merged = tmp_path / "single", tmp_path / "denoise"
    assert sorted(p.name for p in merged.iterdir()) == sorted(p.name for p in single.iterdir())  # no group files
    assert len(list((tmp_path / "work" / "denoise").glob("sim.shallow.group[12]of2.provenance.json"))) == 2
    for kind in ("denoised", "peakprob"):
        for chrom in SIZES:
            assert intervals(merged / f"sim.shallow.{kind}.bw", chrom) == intervals(single / f"sim.shallow.{kind}.bw",
                                                                                  chrom), (kind, chrom)
    peaks = (merged / "sim.shallow.peaks.narrowPeak").read_bytes()
    assert peaks == (single / "sim.shallow.peaks.narrowPeak").read_bytes() and peaks.count(b"\n") > 10
    with pyBigWig.open(str(merged / "sim.shallow.peaks.bb")) as a, pyBigWig.open(str(single / "sim.shallow.peaks.bb")) as b:
        assert all(a.entries(c, 0, n) == b.entries(c, 0, n) for c, n in b.chroms().items())
    record = json.loads((merged / "sim.shallow.provenance.json").read_text())
    assert record.pop("merged_from") and record == json.loads((single / "sim.shallow.provenance.json").read_text())
    session = (merged / "sim.shallow.igv.xml").read_text()
    assert session == (single / "sim.shallow.igv.xml").read_text() and "../subsample/" in session  # input track too
    qc = "sim.shallow.denoised_peaks.qc.json"
    assert (tmp_path / "qc_denoised" / qc).read_text() == (tmp_path / "qc_single" / qc).read_text()
