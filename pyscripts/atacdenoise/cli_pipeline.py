"""Subcommands the Nextflow pipeline needs around the core steps: ``align``, ``samplesheet`` and
``pipeline`` (the local runner).

``cli.py`` registers them with::

    from atacdenoise.cli_pipeline import add_align_parser, add_pipeline_parser, add_samplesheet_parser
    add_align_parser(sub)
    add_samplesheet_parser(sub)
    add_pipeline_parser(sub)

Each handler raises :class:`InputError` for bad input; ``cli.main`` prints it as one line.
"""

from __future__ import annotations

import argparse
import logging
import os

from atacdenoise.cli_registry import ANNOTATION_HELP
from atacdenoise.errors import InputError
from atacdenoise.cli_args import COMMON, add_output_arg
from atacdenoise.io.align import NEXTERA_ADAPTER

log = logging.getLogger("atacdenoise.cli")


def cmd_align(args) -> None:
    from atacdenoise.io.align import align, build_index

    if args.build_index:
        if not args.fasta:
            raise InputError(None, "--build-index needs --fasta")
        prefix = build_index(args.fasta, args.build_index, threads=args.threads)
        log.info("built bowtie2 index %s", prefix)
        return
    if not args.fastq1 or not args.output:
        raise InputError(None, "--fastq1 and --output are required (or --build-index DIR with --fasta)")
    summary = align(args.fastq1, args.output, fastq2=args.fastq2, fasta=args.fasta, index=args.index,
                    threads=args.threads, sample=args.sample, adapter=None if args.no_trim else args.adapter)
    log.info("wrote %s: %.2f%% aligned, %s duplicate reads flagged", summary.bam, summary.alignment_rate,
             f"{summary.duplicates:,}")


def add_align_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("align", parents=[COMMON],
                              help="FASTQ -> sorted, duplicate-marked, indexed BAM (cutadapt + bowtie2 + samtools)")
    p.add_argument("--fastq1", help="read 1 FASTQ (or the only FASTQ for single-end reads)")
    p.add_argument("--fastq2", help="read 2 FASTQ for paired-end reads")
    ref = p.add_mutually_exclusive_group(required=True)
    ref.add_argument("--fasta", help="genome FASTA; a bowtie2 index is built from it first")
    ref.add_argument("--index", help="bowtie2 index prefix, or a folder holding one index")
    add_output_arg(p, "--output", help="output BAM (its .bai is written beside it)")
    p.add_argument("--sample", help="read-group sample name (default: the output name without .bam)")
    p.add_argument("--threads", type=int, default=1, help="cutadapt, bowtie2 and samtools threads")
    p.add_argument("--adapter", default=NEXTERA_ADAPTER,
                   help=f"3' adapter trimmed from both reads with cutadapt first (default: Nextera {NEXTERA_ADAPTER})")
    p.add_argument("--no-trim", action="store_true", help="align the reads as they are (no adapter trimming)")
    p.add_argument("--build-index", metavar="DIR", help="only build the bowtie2 index of --fasta into DIR")
    p.set_defaults(func=cmd_align)
    return p


def cmd_samplesheet_check(args) -> None:
    from atacdenoise.samplesheet import read_samplesheet

    samples = read_samplesheet(args.file, base_dir=args.base_dir, check_files=not args.no_file_check)
    kinds = ", ".join(f"{k}: {sum(s.kind == k for s in samples)}" for k in ("paired", "single", "bam")
                      if any(s.kind == k for s in samples))
    log.info("%s: %d samples OK (%s)", args.file, len(samples), kinds)


def add_samplesheet_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("samplesheet", help="check a pipeline samplesheet (sample,fastq_1,fastq_2,bam)")
    actions = p.add_subparsers(dest="samplesheet_command", required=True, metavar="ACTION")
    check = actions.add_parser("check", parents=[COMMON],
                               help="validate against assets/schema_input.json plus cross-row checks")
    check.add_argument("file", help="samplesheet CSV")
    check.add_argument("--base-dir", help="resolve relative paths against this folder (default: current folder)")
    check.add_argument("--no-file-check", action="store_true", help="do not check that the files exist")
    check.set_defaults(func=cmd_samplesheet_check)
    return p


def pipeline_settings(args):
    """The local runner's :class:`~atacdenoise.pipeline.DemoSettings` from ``atacdenoise pipeline`` arguments."""
    from atacdenoise.pipeline import DemoSettings

    return DemoSettings(seed=args.seed, gtf=args.gtf, annotations=tuple(args.annotation or ()),
                        sequence_channels=args.sequence_channels, denoise_chunks=args.denoise_chunks)


def cmd_pipeline(args) -> None:
    from atacdenoise.pipeline import SampleSettings, report_path, run_pipeline, run_samplesheet

    if args.samplesheet:
        if not args.fasta:
            raise InputError(args.samplesheet, "a samplesheet run needs the genome: add --fasta GENOME.fa[.gz]")
        if args.annotation or args.sequence_channels:
            raise InputError(None, "--annotation and --sequence-channels train the demo model; a samplesheet run "
                                   "denoises with --model (or the bundled model of the genome) and takes --gtf")
        settings = SampleSettings(fasta=args.fasta, gtf=args.gtf, model=args.model, fraction=args.fraction,
                                  seed=args.seed, threads=args.threads, train=args.train,
                                  denoise_chunks=args.denoise_chunks)
        outdir = run_samplesheet(args.outdir, args.samplesheet, settings, resume=args.resume, force=args.force)
        reports = sorted((outdir / "report").glob("*.report.html"))
        log.info("pipeline finished: results in %s%s", outdir,
                 f"; the reports are {', '.join(map(str, reports))}" if reports else "")
        return
    if args.fasta or args.model or args.train:
        raise InputError(None, "--fasta, --model and --train go with --samplesheet (the test profile simulates its "
                               "genome and always trains)")
    outdir = run_pipeline(args.outdir, profile=args.profile, samplesheet=args.samplesheet,
                          settings=pipeline_settings(args), resume=args.resume, force=args.force)
    report = report_path(outdir)
    log.info("pipeline finished: results in %s%s", outdir, f"; the report is {report}" if report.exists() else "")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def add_pipeline_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("pipeline", parents=[COMMON], help="run the pipeline's steps locally, without Nextflow")
    p.add_argument("--samplesheet", help="CSV of samples (sample,fastq_1,fastq_2,bam; see assets/schema_input.json): "
                                         "each is aligned (FASTQ rows), filtered, thinned to --fraction, denoised "
                                         "and reported against its own deep library; without it: --profile test")
    p.add_argument("--fasta", help="with --samplesheet: the genome FASTA (plain or gzip)")
    p.add_argument("--model", help="with --samplesheet: ONNX model or models:/NAME@ALIAS (default: the bundled "
                                   "model trained on the --fasta genome, e.g. sacCer3)")
    p.add_argument("--train", action="store_true",
                   help="with --samplesheet: train a model on the first sample's deep library (WINDOWS, NASH_SEARCH "
                        "with the demo's small search, EXPORT_ONNX), register and promote it in a local MLflow "
                        "server and denoise every sample with models:/atac-denoiser@champion")
    p.add_argument("--fraction", type=float, default=0.1,
                   help="with --samplesheet: the shallow twin's share of the deep insertions (default 0.1)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="with --samplesheet: align threads (default: all cores)")
    add_output_arg(p, "--outdir", required=True, help="folder for every step's results")
    p.add_argument("--profile", default="test", choices=["test"], help="test: simulate a small data set first")
    p.add_argument("--seed", type=int, default=1, help="seed of the simulation, thinning and search")
    p.add_argument("--resume", action="store_true",
                   help="continue a run in --outdir: steps it finished (their outputs exist) are skipped")
    p.add_argument("--force", action="store_true", help="delete what --outdir holds and start over")
    p.add_argument("--denoise-chunks", type=_positive_int, default=1, metavar="N",
                   help="denoise each sample as N chromosome groups balanced by length (denoise --group I/N, group "
                        "files in OUTDIR/work/denoise) and merge them into the one output set (MERGE_DENOISED), as "
                        "the Nextflow param denoise_chunks does (default 1: one DENOISE step)")
    # Genome channels, as the Nextflow params gtf, annotation and sequence_channels: to WINDOWS and DENOISE.
    p.add_argument("--gtf", help="GTF/GFF3 of genes: the tss channel (the same as --annotation tss=FILE)")
    p.add_argument("--annotation", action="append", metavar="NAME=FILE", help=ANNOTATION_HELP)
    p.add_argument("--sequence-channels", action="store_true",
                   help="train with DNA sequence channels read from the (simulated) genome FASTA")
    p.set_defaults(func=cmd_pipeline)
    return p
