"""Run the pipeline's steps in order without Nextflow.

Each step calls the same ``bin/`` executable, with the same arguments, as the
Nextflow process of the same name (``modules/*.nf``), in ``main.nf``'s order:
train (ALIGN -> FILTER_SHIFT -> CALL_PEAKS, BIN -> SUBSAMPLE -> WINDOWS ->
NASH_SEARCH -> EXPORT_ONNX -> REGISTER_MODEL) then denoise the shallow twin
(DENOISE -> REPORT, QC_DENOISED). QC runs on the deep BAM and on the shallow
twin (after their peaks) and on the denoised peaks. The ``test`` profile first simulates the deep sample. The
runner starts a local MLflow server (SQLite, in ``OUTDIR/mlflow``) for the
registry steps and stops it at the end.

Genome channels mirror the Nextflow params ``gtf``, ``annotation`` and
``sequence_channels``: ``DemoSettings.gtf`` (the ``tss`` annotation),
``annotations`` (``NAME=FILE``, as ``--annotation`` takes them) and
``sequence_channels`` (the simulated genome's FASTA) go to WINDOWS
(``prepare``) and DENOISE. Without them every command is what it always was.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from atacdenoise.errors import InputError
from atacdenoise.bundled import bundled_models_dir

BIN_DIR = Path(__file__).resolve().parents[2] / "bin"
log = logging.getLogger(__name__)


@dataclass
class Step:
    name: str          # the Nextflow process it mirrors
    argv: list         # bin/ executable (or its subcommand, from a wheel) and its arguments
    outputs: list = field(default_factory=list)  # files that must exist afterwards


@dataclass(frozen=True)
class DemoSettings:
    """The test profile's knobs (conf/test.config holds the Nextflow equivalents)."""

    seed: int = 1
    chroms: int = 2
    chrom_length: int = 2_000_000
    fragments: int = 200_000
    # The shallow twin keeps 2 % of the deep library: at 10 % this simulator's twin is already as close to the
    # truth as the deep library itself (Pearson 0.947 vs 0.957), leaving a model nothing to show; at 2 % the raw
    # twin scores 0.882. Training depths span 1-10 % of the deep library around it.
    fraction: float = 0.02
    depths: str = "0.01,0.02,0.1"
    n_train: int = 1000
    search: tuple = ("--space", "dilated1d", "--iterations", "2", "--children", "2", "--epochs", "6",
                     "--initial-draws", "1", "--initial-epochs", "20", "--loss", "log-mse+pearson", "--device", "auto")
    model_name: str = "atac-denoiser"
    gtf: str | None = None             # GTF/GFF3 of genes: --annotation tss=FILE (Nextflow: --gtf)
    annotations: tuple = ()            # NAME=FILE, as --annotation takes them (Nextflow: --annotation)
    sequence_channels: bool = False    # train with the simulated genome's DNA sequence channels
    denoise_chunks: int = 1            # DENOISE as this many chromosome groups, then MERGE_DENOISED

    def annotation_specs(self) -> list[str]:
        """``--gtf`` as ``tss=FILE`` then the ``NAME=FILE`` annotations; refuses bad specs and missing files."""
        from atacdenoise.tracks.channels import parse_annotation_args

        if self.gtf and any(spec.partition("=")[0] == "tss" for spec in self.annotations):
            raise InputError(None, "--gtf is the annotation tss: give it once (--gtf FILE or --annotation tss=FILE)")
        specs = ([f"tss={self.gtf}"] if self.gtf else []) + list(self.annotations)
        for path in parse_annotation_args(specs).values():
            if not os.path.isfile(path):
                raise InputError(path, "annotation file does not exist")
        return specs


def genome_args(out: Path, s: DemoSettings) -> list:
    """``--fasta`` (with sequence channels) and ``--annotation NAME=FILE`` for WINDOWS and DENOISE."""
    fasta = ["--fasta", out / "simulate" / "genome.fa"] if s.sequence_channels else []
    return [*fasta, *(arg for spec in s.annotation_specs() for arg in ("--annotation", spec))]


# What each bin/ wrapper runs (each is one line, `exec atacdenoise SUBCOMMAND "$@"`). A wheel carries no bin/: its
# steps run the subcommand with this very interpreter, so that they use the installed package whatever PATH holds
# (tests/test_install.py holds the table to the wrappers).
WRAPPED_SUBCOMMANDS = {
    "atac-align": ("align",), "atac-bin": ("bin",), "atac-denoise": ("denoise",),
    "atac-export": ("registry", "export"), "atac-insertions": ("insertions",), "atac-merge": ("merge",),
    "atac-peaks": ("peaks",), "atac-prepare": ("prepare",), "atac-qc": ("qc",),
    "atac-register": ("registry", "register"), "atac-report": ("report",), "atac-resolve": ("registry", "resolve"),
    "atac-search": ("search",), "atac-simulate": ("simulate",), "atac-subsample": ("subsample",),
    "atac-windows": ("windows",),
}


def _bin(name: str) -> list[str]:
    """The command of a bin/ wrapper: the repository's file (the one Nextflow runs) in a source checkout, else
    (from a wheel) its subcommand run by this interpreter."""
    local = BIN_DIR / name
    return [str(local)] if local.exists() else _atacdenoise(*WRAPPED_SUBCOMMANDS[name])


def _atacdenoise(*subcommand: str) -> list[str]:
    """``atacdenoise SUBCOMMAND`` of this interpreter's package (not whichever ``atacdenoise`` PATH finds first)."""
    return [sys.executable, "-m", "atacdenoise.cli", *subcommand]


def train_steps(out: Path, s: DemoSettings) -> list[Step]:
    sim, sizes = out / "simulate", out / "simulate" / "chrom.sizes"
    deep = out / "filter_shift" / "sim.insertions.bed.gz"
    shallow = out / "subsample" / f"sim.sub{s.fraction:g}.insertions.bed.gz"
    return [
        Step("SIMULATE", [*_bin("atac-simulate"), "--outdir", sim, "--prefix", "sim", "--chroms", s.chroms,
                          "--chrom-length", s.chrom_length, "--fragments", s.fragments, "--seed", s.seed],
             [sim / "sim_R1.fastq.gz", sizes]),
        Step("BOWTIE2_BUILD", [*_bin("atac-align"), "--fasta", sim / "genome.fa",
                               "--build-index", out / "bowtie2_index"], [out / "bowtie2_index"]),
        Step("ALIGN", [*_bin("atac-align"), "--fastq1", sim / "sim_R1.fastq.gz", "--fastq2", sim / "sim_R2.fastq.gz",
                       "--index", out / "bowtie2_index", "--output", out / "align" / "sim.bam", "--sample", "sim",
                       "--threads", os.cpu_count() or 1],
             [out / "align" / "sim.bam"]),
        Step("FILTER_SHIFT", [*_bin("atac-insertions"), "--input", out / "align" / "sim.bam", "--output", deep],
             [deep]),
        Step("CALL_PEAKS", [*_bin("atac-peaks"), "--input", deep, "--chrom-sizes", sizes,
                            "--out-prefix", out / "call_peaks" / "sim"], [out / "call_peaks" / "sim.narrowPeak"]),
        Step("BIN", [*_bin("atac-bin"), "--input", deep, "--chrom-sizes", sizes,
                     "--out-prefix", out / "bin" / "sim.coverage"], [out / "bin" / "sim.coverage.bw"]),
        Step("SUBSAMPLE", [*_bin("atac-subsample"), "--input", deep, "--fraction", f"{s.fraction:g}", "--seed", s.seed,
                           "--output", out / "subsample" / "sim.sub{fraction}.insertions.bed.gz"], [shallow]),
        Step("CALL_PEAKS_SHALLOW", [*_bin("atac-peaks"), "--input", shallow, "--chrom-sizes", sizes,
                                    "--out-prefix", out / "shallow" / "sim.shallow"],
             [out / "shallow" / "sim.shallow.narrowPeak"]),
        qc_step("QC", out / "align" / "sim.bam", out / "call_peaks" / "sim.narrowPeak", out / "qc" / "sim", sizes, s.gtf),
        qc_step("QC_SHALLOW", shallow, out / "shallow" / "sim.shallow.narrowPeak",
                out / "qc_shallow" / f"sim.sub{s.fraction:g}", sizes, s.gtf),
        Step("WINDOWS", [*_bin("atac-prepare"), "--insertions", deep, "--clean-bigwig", out / "bin" / "sim.coverage.bw",
                         "--clean-peaks", out / "call_peaks" / "sim.narrowPeak", "--chrom-sizes", sizes,
                         "--outdir", out / "windows", "--train-chroms", "chr1", "--val-chroms", "chr2",
                         "--depths", s.depths, "--n-train", s.n_train, "--seed", s.seed,
                         "--resample", "--clean-insertions", deep, *genome_args(out, s)],
             [out / "windows" / "train.npz", out / "windows" / "val.npz"]),
        Step("NASH_SEARCH", [*_bin("atac-search"), "--train", out / "windows" / "train.npz", "--val",
                             out / "windows" / "val.npz", "--outdir", out / "nash_search", *s.search, "--seed", s.seed],
             [out / "nash_search" / "best_model.json", out / "nash_search" / "search.png"]),
        Step("EXPORT_ONNX", [*_bin("atac-export"), out / "nash_search", "--output", out / "export_onnx" / "model.onnx",
                             "--data", out / "windows" / "val.npz", "--genome", "sim"],
             [out / "export_onnx" / "model.onnx"]),
    ]


def qc_step(name: str, reads, peaks, prefix: Path, sizes: Path, gtf: str | None = None) -> Step:
    """QC of one library (``atacdenoise qc``): FRiP against ``peaks``, TSS enrichment when ``gtf`` is given."""
    gtf = ["--gtf", gtf] if gtf else []
    return Step(name, [*_bin("atac-qc"), "--input", reads, "--chrom-sizes", sizes, "--peaks", peaks, *gtf,
                       "--sample", prefix.name, "--out-prefix", prefix], [f"{prefix}.qc.json"])


def registry_steps(out: Path, model_name: str, tracking_uri: str, genome: str = "sim") -> list[Step]:
    """REGISTER_MODEL (out/nash_search, contract from out/windows/val.npz) and PROMOTE it to @champion."""
    return [
        Step("REGISTER_MODEL", [*_bin("atac-register"), out / "nash_search", "--tracking-uri", tracking_uri,
                                "--name", model_name, "--data", out / "windows" / "val.npz", "--genome", genome]),
        Step("PROMOTE", [*_atacdenoise("registry", "promote"), "--tracking-uri", tracking_uri, "--name", model_name,
                         "--version", "1", "--alias", "champion"]),
    ]


def denoise_outputs(prefix) -> list[str]:
    """The files of one denoise output set (``--out-prefix PREFIX``) that the later steps read."""
    return [f"{prefix}.denoised.bw", f"{prefix}.peakprob.bw", f"{prefix}.peaks.narrowPeak", f"{prefix}.provenance.json"]


def denoise_group_prefix(out: Path, prefix: Path, group: int, chunks: int) -> Path:
    """Group ``group`` of ``chunks``'s output set: ``ID.group<I>of<N>`` as main.nf names it, under
    ``OUTDIR/work/denoise``. They stay there, out of the results (as Nextflow's stay in its work folder, unpublished),
    so that ``--resume`` finds the finished groups; ``denoise/`` holds only the merged set, as a single run's."""
    return out / "work" / prefix.parent.name / f"{prefix.name}.group{group}of{chunks}"


def scattered_denoise(name: str, argv: list, chunks: int, out: Path) -> list[Step]:
    """DENOISE with ``argv`` (which holds ``--out-prefix PREFIX``): one step, or with ``chunks`` > 1 what main.nf
    runs for ``--denoise_chunks``: one step per chromosome group (``--group I/N``, balanced by length) and
    MERGE_DENOISED (``atacdenoise merge``) gathering them into PREFIX, where the one step would write."""
    at = argv.index("--out-prefix")
    prefix = Path(argv[at + 1])
    if chunks <= 1:
        return [Step(name, argv, denoise_outputs(prefix))]
    groups = [denoise_group_prefix(out, prefix, group, chunks) for group in range(1, chunks + 1)]
    steps = [Step(f"{name}.group{group}of{chunks}",
                  [*argv[:at], "--group", f"{group}/{chunks}", "--out-prefix", group_prefix, *argv[at + 2:]],
                  denoise_outputs(group_prefix)) for group, group_prefix in enumerate(groups, start=1)]
    merge_name = "MERGE_DENOISED" + name.removeprefix("DENOISE")
    return steps + [Step(merge_name, [*_bin("atac-merge"), *groups, "--out-prefix", prefix], denoise_outputs(prefix))]


def report_path(out: Path) -> Path:
    """The HTML report of the denoised shallow twin (the REPORT step's output)."""
    return out / "report" / "sim.shallow.report.html"


def denoise_steps(out: Path, s: DemoSettings, model: str, tracking_uri: str | None) -> list[Step]:
    shallow = out / "subsample" / f"sim.sub{s.fraction:g}.insertions.bed.gz"
    prefix = out / "denoise" / "sim.shallow"
    uri = ["--tracking-uri", tracking_uri] if tracking_uri else []
    steps = [*scattered_denoise("DENOISE", [*_bin("atac-denoise"), "--input", shallow, "--model", model,
                                            "--chrom-sizes", out / "simulate" / "chrom.sizes", "--out-prefix", prefix,
                                            *uri, *genome_args(out, s)], s.denoise_chunks, out),
             # FRiP of the denoised peaks: the shallow input's insertions inside them
             qc_step("QC_DENOISED", shallow, f"{prefix}.peaks.narrowPeak",
                     out / "qc_denoised" / "sim.shallow.denoised_peaks", out / "simulate" / "chrom.sizes", s.gtf)]
    steps.append(Step("REPORT", [*_bin("atac-report"), "--denoised", f"{prefix}.denoised.bw",
                                 "--peakprob", f"{prefix}.peakprob.bw", "--peaks", f"{prefix}.peaks.narrowPeak",
                                 "--noisy", shallow, "--chrom-sizes", out / "simulate" / "chrom.sizes",
                                 "--truth", out / "simulate" / "truth_accessibility.bw",
                                 "--truth-peaks", out / "simulate" / "truth_peaks.bed",
                                 "--shallow-peaks", out / "shallow" / "sim.shallow.narrowPeak",
                                 "--search-dir", out / "nash_search",
                                 "--model-note", f"{model}: a demo model, trained in this run by a small NASH "
                                                 "search on simulated data (it shows the pipeline; it is not "
                                                 "for real samples)",
                                 "--output", report_path(out)],
                  [report_path(out)]))
    return steps


def run_steps(steps: list[Step], log_dir: Path, first_number: int = 1, total: int | None = None,
              resume: bool = False) -> None:
    """Run steps one by one, showing progress; stop at the first failure with its log.

    A step that succeeds leaves ``NN_step.done`` beside its log. With ``resume``
    a step with that marker and all its outputs is skipped; an unfinished one
    starts again from nothing (its outputs are removed first).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    total = total or len(steps)
    for number, step in enumerate(steps, start=first_number):
        argv = [str(a) for a in step.argv]
        step_log = log_dir / f"{number:02d}_{step.name.lower()}.log"
        done = step_log.with_suffix(".done")
        if resume and done.exists() and all(os.path.exists(p) for p in step.outputs):
            log.info("[%d/%d] %s: finished before, skipped", number, total, step.name)
            continue
        done.unlink(missing_ok=True)
        _remove_outputs(step)
        log.info("[%d/%d] %s: %s ...", number, total, step.name, shlex.join([Path(argv[0]).name, *argv[1:4]]))
        started = time.time()
        with open(step_log, "w") as fh:
            fh.write(shlex.join(argv) + "\n")
            fh.flush()
            returncode = _run_watched(argv, fh, step_log, started)
        if returncode != 0:
            tail = step_log.read_text().strip().splitlines()[-1:] or ["(no output)"]
            raise InputError(step_log, f"step {step.name} failed (exit {returncode}): {tail[0]}")
        missing = [str(p) for p in step.outputs if not os.path.exists(p)]
        if missing:
            raise InputError(step_log, f"step {step.name} did not write {', '.join(missing)}")
        done.write_text(f"{time.time() - started:.1f} s\n")
        log.info("      done in %.1f s", time.time() - started)


def _run_watched(argv: list[str], log_handle, log: Path, started: float) -> int:
    """Run ``argv`` with its output in ``log``; on a terminal, keep one live line with the elapsed
    time and the step's latest output (its own progress bar, when it draws one)."""
    process = subprocess.Popen(argv, stdout=log_handle, stderr=subprocess.STDOUT)
    live = sys.stderr.isatty()  # a live status line, like a progress bar (not a diagnostic): terminals only
    while True:
        try:
            return_code = process.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if live:
                print(f"\r\033[K      {time.time() - started:5.0f} s  {_last_output(log)}", end="",
                      file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            process.terminate()
            process.wait()
            raise
    if live:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    return return_code


def _last_output(log: Path, width: int = 90) -> str:
    """The last line a step wrote (after a progress bar's carriage return), cut to ``width``."""
    with open(log, "rb") as fh:
        fh.seek(max(0, os.path.getsize(log) - 2000))
        text = fh.read().decode("utf-8", "replace")
    last = text.replace("\r", "\n").strip().splitlines()[-1:] or [""]
    return last[0].strip()[:width]


def _remove_outputs(step: Step) -> None:
    """An unfinished step's partial outputs go, so that it starts from nothing."""
    for path in map(Path, step.outputs):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def prepare_outdir(out: Path, resume: bool, force: bool) -> None:
    """A fresh or empty ``out``; with ``force`` an old run's files go; with ``resume`` they stay."""
    if resume and force:
        raise InputError(None, "--resume and --force contradict each other: choose one")
    if out.exists() and not out.is_dir():
        raise InputError(out, "output folder is a file")
    if out.is_dir() and any(out.iterdir()):
        if force:
            shutil.rmtree(out)
        elif not resume:
            raise InputError(out, "output folder is not empty: add --resume to continue where it stopped (finished "
                                  "steps are skipped) or --force to start over")
    out.mkdir(parents=True, exist_ok=True)


# ================================================================ samples from a samplesheet, on a real genome

BUNDLED_MODELS = bundled_models_dir()


@dataclass(frozen=True)
class SampleSettings:
    """What a samplesheet run needs besides the sheet (Nextflow: ``--fasta``, ``--gtf``, ``--model``, ...)."""

    fasta: str                     # genome FASTA (plain or gzip): bowtie2 index, chrom sizes, sequence channels
    gtf: str | None = None         # GTF/GFF3 genes: TSS channel, QC's TSS enrichment, the report's gene lane
    model: str | None = None       # ONNX file or models:/NAME@ALIAS; default: a bundled model of this genome
    fraction: float = 0.1          # the shallow twin denoised: this share of the deep library's insertions
    seed: int = 1
    threads: int = os.cpu_count() or 1
    train: bool = False            # train on the first sample's deep library, register, denoise with @champion
    denoise_chunks: int = 1        # DENOISE as this many chromosome groups, then MERGE_DENOISED

    @property
    def gtf_specs(self) -> list[str]:
        return [f"tss={self.gtf}"] if self.gtf else []


def scan_genome(fasta: str | os.PathLike) -> tuple[dict[str, int], dict[str, str]]:
    """Every chromosome's length and M5, read from the FASTA in one streaming pass."""
    from atacdenoise.io.genome import iter_sequence_bins

    lengths, md5 = {}, {}
    for seq in iter_sequence_bins(fasta, 1 << 16):
        lengths[seq.chrom], md5[seq.chrom] = seq.length, seq.md5
    return lengths, md5


def genome_files(fasta: str | os.PathLike, out: Path,
                 scanned: tuple[dict[str, int], dict[str, str]] | None = None) -> tuple[Path, dict[str, str]]:
    """``out/genome/chrom.sizes`` and every chromosome's M5 (``sequence_md5.json``) of the FASTA, kept on resume."""
    import json

    from atacdenoise.io.atomic import atomic_path

    sizes, md5_path = out / "genome" / "chrom.sizes", out / "genome" / "sequence_md5.json"
    if sizes.exists() and md5_path.exists():
        return sizes, json.loads(md5_path.read_text())
    lengths, md5 = scanned or scan_genome(fasta)
    with atomic_path(md5_path) as tmp:
        tmp.write_text(json.dumps(md5, indent=1) + "\n")
    with atomic_path(sizes) as tmp:
        tmp.write_text("".join(f"{c}\t{n}\n" for c, n in lengths.items()))
    return sizes, md5


def bundled_model_for(md5: dict[str, str], models_dir: Path = BUNDLED_MODELS) -> Path | None:
    """The bundled ONNX model trained on this genome: every chromosome it read has the FASTA's sequence (M5)."""
    import json

    import onnx

    for path in sorted(models_dir.glob("*.onnx")):
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        trained = json.loads(meta.get("atacdenoise.sequence_md5", "{}") or "{}")
        if trained and all(md5.get(chrom) == m5 for chrom, m5 in trained.items()):
            return path
    return None


def sample_steps(out: Path, sample, sizes: Path, index: Path, model: str, s: SampleSettings,
                 tracking_uri: str | None = None) -> list[Step]:
    """One sample's steps, as main.nf runs them: ALIGN (FASTQ rows) -> FILTER_SHIFT -> CALL_PEAKS, BIN ->
    SUBSAMPLE -> CALL_PEAKS_SHALLOW -> QC, QC_SHALLOW -> DENOISE -> QC_DENOISED -> REPORT. The deep library's
    coverage and peaks are the truth the denoised shallow twin is scored against."""
    return (sample_preprocess_steps(out, sample, sizes, index, s)
            + sample_denoise_steps(out, sample, sizes, model, s, tracking_uri))


def _sample_files(out: Path, sid: str, s: SampleSettings) -> dict[str, Path]:
    return {"deep": out / "filter_shift" / f"{sid}.insertions.bed.gz",
            "shallow": out / "subsample" / f"{sid}.sub{s.fraction:g}.insertions.bed.gz",
            "peaks": out / "call_peaks" / f"{sid}.narrowPeak", "coverage": out / "bin" / f"{sid}.coverage.bw",
            "shallow_peaks": out / "shallow" / f"{sid}.shallow.narrowPeak", "prefix": out / "denoise" / f"{sid}.shallow"}


def sample_preprocess_steps(out: Path, sample, sizes: Path, index: Path, s: SampleSettings) -> list[Step]:
    """ALIGN (FASTQ rows) -> FILTER_SHIFT -> CALL_PEAKS, BIN -> SUBSAMPLE -> CALL_PEAKS_SHALLOW -> QC, QC_SHALLOW."""
    sid = sample.id
    bam = Path(sample.bam) if sample.bam else out / "align" / f"{sid}.bam"
    f = _sample_files(out, sid, s)
    deep, shallow, peaks, shallow_peaks, coverage = f["deep"], f["shallow"], f["peaks"], f["shallow_peaks"], f["coverage"]
    steps = []
    if not sample.bam:
        reads = ["--fastq1", sample.fastq_1, *(["--fastq2", sample.fastq_2] if sample.fastq_2 else [])]
        steps.append(Step(f"ALIGN.{sid}", [*_bin("atac-align"), *reads, "--index", index, "--output", bam,
                                           "--sample", sid, "--threads", s.threads], [bam]))
    steps += [
        Step(f"FILTER_SHIFT.{sid}", [*_bin("atac-insertions"), "--input", bam, "--chrom-sizes", sizes,
                                     "--output", deep], [deep]),
        Step(f"CALL_PEAKS.{sid}", [*_bin("atac-peaks"), "--input", deep, "--chrom-sizes", sizes,
                                   "--out-prefix", out / "call_peaks" / sid], [peaks]),
        Step(f"BIN.{sid}", [*_bin("atac-bin"), "--input", deep, "--chrom-sizes", sizes,
                            "--out-prefix", out / "bin" / f"{sid}.coverage"], [coverage]),
        Step(f"SUBSAMPLE.{sid}", [*_bin("atac-subsample"), "--input", deep, "--fraction", f"{s.fraction:g}",
                                  "--seed", s.seed, "--output", out / "subsample" / f"{sid}.sub{{fraction}}.insertions.bed.gz"],
             [shallow]),
        Step(f"CALL_PEAKS_SHALLOW.{sid}", [*_bin("atac-peaks"), "--input", shallow, "--chrom-sizes", sizes,
                                           "--out-prefix", out / "shallow" / f"{sid}.shallow"], [shallow_peaks]),
        qc_step(f"QC.{sid}", bam, peaks, out / "qc" / sid, sizes, s.gtf),
        qc_step(f"QC_SHALLOW.{sid}", shallow, shallow_peaks, out / "qc_shallow" / f"{sid}.sub{s.fraction:g}", sizes,
                s.gtf),
    ]
    return steps


def sample_denoise_steps(out: Path, sample, sizes: Path, model: str, s: SampleSettings,
                         tracking_uri: str | None = None) -> list[Step]:
    """DENOISE the shallow twin -> QC_DENOISED (FRiP of its peaks) -> REPORT against the sample's deep library."""
    sid, gtf = sample.id, s.gtf_specs
    f = _sample_files(out, sid, s)
    shallow, peaks, coverage, prefix = f["shallow"], f["peaks"], f["coverage"], f["prefix"]
    uri = ["--tracking-uri", tracking_uri] if tracking_uri else []
    shallow_peaks = ["--shallow-peaks", f["shallow_peaks"]]
    steps = [
        *scattered_denoise(f"DENOISE.{sid}", [*_bin("atac-denoise"), "--input", shallow, "--model", model,
                                              "--chrom-sizes", sizes, "--out-prefix", prefix, "--fasta", s.fasta, *uri,
                                              *(arg for spec in gtf for arg in ("--annotation", spec))],
                           s.denoise_chunks, out),
        qc_step(f"QC_DENOISED.{sid}", shallow, f"{prefix}.peaks.narrowPeak",
                out / "qc_denoised" / f"{sid}.shallow.denoised_peaks", sizes, s.gtf),
    ]
    report = out / "report" / f"{sid}.shallow.report.html"
    steps.append(Step(f"REPORT.{sid}", [
        *_bin("atac-report"), "--denoised", f"{prefix}.denoised.bw", "--peakprob", f"{prefix}.peakprob.bw",
        "--peaks", f"{prefix}.peaks.narrowPeak", "--noisy", shallow, "--chrom-sizes", sizes,
        "--truth", coverage, "--truth-peaks", peaks, "--provenance", f"{prefix}.provenance.json", *shallow_peaks,
        *(["--genes", s.gtf] if s.gtf else []),
        "--model-note", f"{model}; the truth is this sample's own deep library (its coverage and MACS3 peaks), "
                        f"the input its {s.fraction:g} twin",
        "--output", report], [report]))
    return steps


def training_chroms(deep_insertions: str | os.PathLike, sizes: dict[str, int]) -> tuple[list[str], str]:
    """(training chromosomes, validation chromosome) of a deep library: the nuclear chromosomes it has insertions
    on; the one with the median count validates (held out, as chr2 of the HSC data), the others train."""
    from atacdenoise.io.reads import iter_insertions
    from atacdenoise.tracks.depth import is_mitochondrial

    counts = {chrom: len(p) for chrom, p in iter_insertions(deep_insertions, sizes)
              if len(p) and not is_mitochondrial(chrom)}
    if len(counts) < 2:
        raise InputError(deep_insertions, f"training needs insertions on two nuclear chromosomes at least "
                                          f"(one to validate on); found {', '.join(counts) or 'none'}")
    ranked = sorted(counts, key=counts.get)
    val = ranked[len(ranked) // 2]
    return [c for c in counts if c != val], val


def sample_training_steps(out: Path, sid: str, sizes: Path, train: list[str], val: str,
                          s: SampleSettings) -> list[Step]:
    """WINDOWS -> NASH_SEARCH -> EXPORT_ONNX on sample ``sid``'s deep library: the demo's small search, noisy
    inputs drawn from the deep library at 1/4 to 1 times the shallow twin's depth, its gene starts as a channel."""
    f, demo = _sample_files(out, sid, s), DemoSettings()
    return [
        Step("WINDOWS", [*_bin("atac-prepare"), "--insertions", f["deep"], "--clean-bigwig", f["coverage"],
                         "--clean-peaks", f["peaks"], "--chrom-sizes", sizes, "--outdir", out / "windows",
                         "--train-chroms", ",".join(train), "--val-chroms", val,
                         "--depths", f"{s.fraction / 4:g},{s.fraction:g}", "--n-train", demo.n_train,
                         "--seed", s.seed, "--resample", "--clean-insertions", f["deep"],
                         *(arg for spec in s.gtf_specs for arg in ("--annotation", spec))],
             [out / "windows" / "train.npz", out / "windows" / "val.npz"]),
        Step("NASH_SEARCH", [*_bin("atac-search"), "--train", out / "windows" / "train.npz", "--val",
                             out / "windows" / "val.npz", "--outdir", out / "nash_search", *demo.search,
                             "--seed", s.seed], [out / "nash_search" / "best_model.json"]),
        Step("EXPORT_ONNX", [*_bin("atac-export"), out / "nash_search", "--output", out / "export_onnx" / "model.onnx",
                             "--data", out / "windows" / "val.npz"], [out / "export_onnx" / "model.onnx"]),
    ]


def run_samplesheet(outdir: str | os.PathLike, samplesheet: str | os.PathLike, settings: SampleSettings,
                    resume: bool = False, force: bool = False) -> Path:
    """Every sample of ``samplesheet`` through the real steps (see :func:`sample_steps`) on ``settings.fasta``.

    The bowtie2 index is built once (BOWTIE2_BUILD) when any row holds FASTQ. With ``settings.train`` a model is
    trained on the first sample's deep library (:func:`sample_training_steps`), registered in a local MLflow
    server and promoted, and ``models:/NAME@champion`` denoises every sample. Otherwise ``settings.model``, or
    without it the bundled model trained on this genome (same chromosome sequences); none for other genomes.
    Relative paths in the sheet are resolved against the current folder, as Nextflow resolves them.
    """
    from atacdenoise.samplesheet import read_samplesheet

    samples = read_samplesheet(samplesheet)
    if not Path(settings.fasta).is_file():
        raise InputError(settings.fasta, "genome FASTA does not exist")
    if settings.gtf and not Path(settings.gtf).is_file():
        raise InputError(settings.gtf, "GTF/GFF3 file does not exist")
    if not 0 < settings.fraction < 1:
        raise InputError(None, f"--fraction must be between 0 and 1, got {settings.fraction}")
    out = Path(outdir)
    scanned, model = scan_genome(settings.fasta), settings.model
    if settings.train and model:
        raise InputError(None, "--train trains the model that denoises; give --model or --train, not both")
    if model is None and not settings.train:  # chosen before the output folder is touched: a refusal leaves nothing
        bundled = bundled_model_for(scanned[1])
        if bundled is None:
            raise InputError(settings.fasta, "no --model given and no bundled model was trained on this genome "
                                             f"(bundled: {', '.join(p.stem for p in sorted(BUNDLED_MODELS.glob('*.onnx')))})")
        model = str(bundled)
        log.info("model: %s (bundled, trained on this genome's sequence)", bundled.name)
    prepare_outdir(out, resume, force)
    sizes, _ = genome_files(settings.fasta, out, scanned)
    index = out / "bowtie2_index"
    steps = []
    if any(not sample.bam for sample in samples):
        steps.append(Step("BOWTIE2_BUILD", [*_bin("atac-align"), "--fasta", settings.fasta, "--build-index", index,
                                            "--threads", settings.threads], [index]))
    if not settings.train:
        for sample in samples:
            steps += sample_steps(out, sample, sizes, index, model, settings)
        run_steps(steps, out / "logs", 1, len(steps), resume)
        return out
    for sample in samples:
        steps += sample_preprocess_steps(out, sample, sizes, index, settings)
    denoise_count = len(sample_denoise_steps(out, samples[0], sizes, "", settings))
    total = len(steps) + 3 + 2 + denoise_count * len(samples)  # + training, registry, denoising
    run_steps(steps, out / "logs", 1, total, resume)
    return _train_register_denoise(out, samples, sizes, settings, len(steps) + 1, total, resume)


def _train_register_denoise(out: Path, samples, sizes: Path, s: SampleSettings, first: int, total: int,
                            resume: bool) -> Path:
    """After every sample's preprocessing: train on the first one, register, promote, denoise them all."""
    from atacdenoise.io.chromsizes import read_chrom_sizes
    from atacdenoise.registry.server import start_server

    train, val = training_chroms(_sample_files(out, samples[0].id, s)["deep"], read_chrom_sizes(sizes))
    log.info("training on %s (%s), validating on %s", samples[0].id, ",".join(train), val)
    training = sample_training_steps(out, samples[0].id, sizes, train, val, s)
    run_steps(training, out / "logs", first, total, resume)
    first += len(training)
    with start_server(out / "mlflow") as server:
        run_steps(registry_steps(out, DemoSettings().model_name, server.url, genome="unknown"), out / "logs",
                  first, total, resume)
        model = f"models:/{DemoSettings().model_name}@champion"
        denoising = [step for sample in samples for step in sample_denoise_steps(out, sample, sizes, model, s,
                                                                                   server.url)]
        run_steps(denoising, out / "logs", first + 2, total, resume)
    return out


def run_pipeline(outdir: str | os.PathLike, profile: str = "test", samplesheet: str | None = None,
                 settings: DemoSettings = DemoSettings(), resume: bool = False, force: bool = False) -> Path:
    """Train on the simulated deep sample, register and promote the model, denoise the shallow twin.

    ``resume`` skips the steps a previous run in ``outdir`` finished; ``force`` starts over.
    Samplesheets go to :func:`run_samplesheet`.
    """
    from atacdenoise.registry.server import start_server

    out = Path(outdir)
    if profile != "test" or samplesheet:
        raise InputError(samplesheet, "run_pipeline runs the 'test' profile (simulated data); samplesheets go "
                                      "to run_samplesheet (atacdenoise pipeline --samplesheet S --fasta G)")
    settings.annotation_specs()  # bad --gtf/--annotation stop the run before any step
    prepare_outdir(out, resume, force)
    train = train_steps(out, settings)
    total = len(train) + 2 + len(denoise_steps(out, settings, "", None))
    run_steps(train, out / "logs", 1, total, resume)
    log.info("[%d/%d] starting a local MLflow server in %s ...", len(train) + 1, total, out / "mlflow")
    with start_server(out / "mlflow") as server:
        run_steps(registry_steps(out, settings.model_name, server.url), out / "logs", len(train) + 1, total, resume)
        model = f"models:/{settings.model_name}@champion"
        run_steps(denoise_steps(out, settings, model, server.url), out / "logs", len(train) + 3, total, resume)
        log.info("MLflow UI with the registered model: %s (stopped now; restart with "
                 "`atacdenoise registry serve --workdir %s`)", server.url, out / "mlflow")
    return out
