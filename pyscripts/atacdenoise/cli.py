"""The one ``atacdenoise`` command. Each subcommand parses arguments and calls one
library function; all the work lives in the library.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys

from atacdenoise import __version__
from atacdenoise.cli_pipeline import add_align_parser, add_pipeline_parser, add_samplesheet_parser
from atacdenoise.cli_evaluate import add_evaluate_parser, add_report_parser
from atacdenoise.cli_args import (COMMON, HelpFormatter, add_blacklist_arg, add_filter_args, add_format_arg,
                                  add_output_arg, chrom_sizes_of, progress_wanted, read_filter, setup_logging)
from atacdenoise.cli_qc import add_qc_parser
from atacdenoise.cli_registry import add_denoise_parser, add_genome_args, add_registry_parsers
from atacdenoise.cli_scatter import add_scatter_parsers
from atacdenoise.errors import InputError

log = logging.getLogger("atacdenoise.cli")

CHROM_SIZES_HELP = "chromosome sizes (name, length) to keep (default: the BAM header)"
WINDOW_HELP = "model input window in bins"
TARGET_HELP = "scored centre of each window in bins (at most --window)"


def _check_sizes(args) -> None:
    """--window/--target/--bin-size where a command has them: positive, the target inside the window."""
    for option in ("window", "target", "bin_size"):
        value = getattr(args, option, None)
        if value is not None and value <= 0:
            raise InputError(f"--{option.replace('_', '-')}", f"must be positive, got {value}")
    if getattr(args, "target", None) is not None and args.target > args.window:
        raise InputError("--target", f"{args.target} bins is larger than --window {args.window}: the target is the "
                                     f"window's centre")


# ---------------------------------------------------------------- subcommands

def cmd_insertions(args) -> None:
    from atacdenoise.io.reads import FilterCounts, iter_insertions, write_insertions_bed

    counts = FilterCounts()
    sizes = chrom_sizes_of(args)
    n = write_insertions_bed(args.output, iter_insertions(args.input, sizes, args.fmt, read_filter(args), counts))
    log.info("wrote %s insertions to %s", f"{n:,}", args.output)
    if args.stats:
        print(json.dumps(counts.__dict__, indent=1))


def cmd_subsample(args) -> None:
    from atacdenoise.tracks.subsample import parse_fractions, subsample

    outputs = subsample(args.input, args.output, parse_fractions(args.fraction), seed=args.seed, fmt=args.fmt,
                        progress=progress_wanted(args))
    for path in outputs:
        print(path)


def cmd_peaks(args) -> None:
    from atacdenoise.tracks.peaks import call_peaks

    outputs = call_peaks(args.input, args.out_prefix, chrom_sizes_of(args), genome_size=args.genome_size,
                         fmt=args.fmt, low_threshold=args.low_threshold, qvalue=args.qvalue,
                         read_filter=read_filter(args), mode=args.mode, blacklist=args.blacklist)
    for path in outputs.values():
        print(path)


def cmd_bin(args) -> None:
    from atacdenoise.tracks.binning import bin_track

    _check_sizes(args)
    outputs = bin_track(args.input, chrom_sizes_of(args), args.out_prefix, representation=args.representation,
                        bin_size=args.bin_size, extend=args.extend, stat=args.stat, normalize=args.normalize,
                        fmt=args.fmt, read_filter=read_filter(args), progress=progress_wanted(args),
                        bedgraph=args.bedgraph)
    for path in outputs.values():
        print(path)


def cmd_windows(args) -> None:
    import numpy as np

    from atacdenoise.io.atomic import atomic_path
    from atacdenoise.tracks.store import open_store
    from atacdenoise.tracks.windows import WindowSpec, make_windows

    _check_sizes(args)
    spec = WindowSpec(args.window, args.target)
    peaks = open_store(args.clean_peaks) if args.clean_peaks else None
    chroms = [c for c in args.chroms.split(",") if c]
    pairs = make_windows(open_store(args.noisy), open_store(args.clean), chroms,
                         None if args.tile else args.n, spec, args.seed, clean_peaks_store=peaks)
    with atomic_path(args.output) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **pairs, window_bins=spec.window_bins, target_bins=spec.target_bins)
    log.info("wrote %s windows to %s", f"{len(pairs['inputs']):,}", args.output)


def cmd_simulate(args) -> None:
    from atacdenoise.tracks.simulate import simulate, simulate_fastq

    if args.fasta:  # reads at a real fragments file's molecules on a real genome
        if args.fragments is None or args.fragments.isdigit():
            raise InputError(args.fragments, "with --fasta, --fragments must be a fragments file "
                                             "(chrom, start, end, barcode, count)")
        chroms = [c for c in (args.keep_chroms or "").split(",") if c] or None
        summary = simulate_fastq(args.fragments, args.fasta, args.outdir, prefix=args.prefix,
                                 read_length=args.read_length, error_rate=args.error_rate, chroms=chroms,
                                 max_fragments=args.max_fragments, seed=args.seed,
                                 progress=progress_wanted(args))
        for path in (summary.r1, summary.r2, summary.truth):
            print(path)
        return
    if args.keep_chroms or args.max_fragments:
        raise InputError(None, "--keep-chroms and --max-fragments need --fasta and a --fragments file")
    try:
        n_fragments = int(args.fragments) if args.fragments is not None else 200_000
    except ValueError:
        raise InputError(args.fragments, "--fragments is a number of fragments to simulate; to read a fragments "
                                         "file give its genome with --fasta") from None
    outputs = simulate(args.outdir, n_chroms=args.chroms, chrom_length=args.chrom_length,
                       n_fragments=n_fragments, seed=args.seed, prefix=args.prefix, read_length=args.read_length)
    for path in outputs.values():
        print(path)


def cmd_prepare(args) -> None:
    from atacdenoise.io.chromsizes import read_chrom_sizes
    from atacdenoise.search.data import prepare
    from atacdenoise.tracks.subsample import parse_fractions
    from atacdenoise.io.narrowpeak import read_peaks
    from atacdenoise.tracks.windows import WindowSpec

    from atacdenoise.tracks.channels import training_genome

    _check_sizes(args)
    depths = parse_fractions(args.depths, option="--depths")
    chrom_sizes = read_chrom_sizes(args.chrom_sizes)
    train_chroms = [c for c in args.train_chroms.split(",") if c]
    val_chroms = [c for c in args.val_chroms.split(",") if c]
    genome = training_genome({c: chrom_sizes[c] for c in train_chroms + val_chroms if c in chrom_sizes},
                             args.bin_size, args.fasta, args.annotation, args.sequence)
    outputs = prepare(args.insertions, args.clean_bigwig, args.clean_peaks, chrom_sizes, train_chroms, val_chroms,
                      args.outdir, depths=depths, n_train=args.n_train,
                      spec=WindowSpec(args.window, args.target), bin_size=args.bin_size, seed=args.seed,
                      regions=read_peaks(args.regions) if args.regions else None, resample=args.resample,
                      clean_insertions=args.clean_insertions, genome=genome)
    for path in outputs.values():
        print(path)


def cmd_search(args) -> None:
    from atacdenoise.search.nash import run_search

    summary = run_search(args.train, args.val, args.outdir, space=args.space, iterations=args.iterations,
                         children=args.children, epochs=args.epochs, lr_max=args.lr_max, lr_min=args.lr_min,
                         batch_size=args.batch_size, device=args.device, seed=args.seed, resume=args.resume,
                         initial_random_draws=args.initial_draws, initial_epochs=args.initial_epochs,
                         peak_weight=args.peak_weight, max_train_windows=args.max_train_windows,
                         loss=args.loss, max_parameters=args.max_parameters, progress=progress_wanted(args),
                         initial_model=args.initial_model, mirror=not args.no_mirror,
                         parallel_children=args.parallel_children, grad_clip=args.grad_clip,
                         devices=args.devices.split(",") if args.devices else None)
    print(json.dumps({k: summary[k] for k in ("best_val_loss", "best_val_pearson", "best_val_auprc",
                                              "best_parameters", "iterations_finished")}))


# ---------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atacdenoise", description="Denoise shallow ATAC-seq: from reads to the track a deep library would give.",
        epilog=MAIN_EPILOG, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"atacdenoise {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("insertions", parents=[COMMON], help="Tn5 insertions (BED6) from BAM, fragments or insertions")
    p.add_argument("--input", required=True, help="BAM, fragments (.tsv[.gz]) or insertions BED")
    p.add_argument("--output", required=True, help="BED6 output (.bed, or .bed.gz: bgzipped with a tabix index)")
    p.add_argument("--chrom-sizes", help=CHROM_SIZES_HELP)
    p.add_argument("--stats", action="store_true", help="print filter counts as JSON")
    add_format_arg(p)
    add_filter_args(p)
    p.set_defaults(func=cmd_insertions)

    p = sub.add_parser("subsample", parents=[COMMON], help="the seed's low-quality twin: keep reads with probability F")
    p.add_argument("--input", required=True, help="BAM, fragments or insertions BED to thin")
    p.add_argument("--fraction", required=True, help="one or more fractions in (0, 1], comma-separated")
    # samtools' seed 0 hashes short numeric read names unevenly; 1 behaves well.
    p.add_argument("--seed", type=int, default=1, help="subsampling seed (default 1)")
    p.add_argument("--output", required=True, help="output path; must contain {fraction} for several fractions")
    add_format_arg(p)
    p.set_defaults(func=cmd_subsample)

    p = sub.add_parser("peaks", parents=[COMMON], help="call peaks with MACS3 (ATAC settings)")
    p.add_argument("--input", required=True, help="BAM, fragments or insertions BED")
    add_output_arg(p, "--out-prefix", ("--output-prefix",), required=True,
                   help="writes PREFIX.narrowPeak, PREFIX.bb (its bigBed, when there are peaks) and PREFIX.signal.bw")
    p.add_argument("--chrom-sizes", help=CHROM_SIZES_HELP)
    p.add_argument("--genome-size", help="MACS3 -g (default: sum of chrom sizes)")
    p.add_argument("--qvalue", type=float, default=0.05, help="MACS3 -q: q-value cutoff")
    p.add_argument("--low-threshold", action="store_true", help="the seed's low threshold (-p 0.01)")
    p.add_argument("--mode", default="insertions", choices=["insertions", "bampe"],
                   help="MACS3 input: shifted insertions (-f BED, default) or whole fragments (-f BAMPE)")
    add_blacklist_arg(p)
    add_format_arg(p)
    add_filter_args(p)
    p.set_defaults(func=cmd_peaks)

    p = sub.add_parser("bin", parents=[COMMON], help="binned tracks as bigWig and as a training array store")
    p.add_argument("--input", required=True, help="reads (BAM/insertions/fragments/bigWig) or narrowPeak for peak-signal")
    add_output_arg(p, "--out-prefix", ("--output-prefix",), required=True, help="writes PREFIX.bw and PREFIX.tracks/")
    p.add_argument("--chrom-sizes", help=CHROM_SIZES_HELP)
    p.add_argument("--representation", default="coverage", choices=["coverage", "peak-signal"],
                   help="coverage of the reads, or a peak-signal track from a narrowPeak")
    p.add_argument("--bin-size", type=int, default=25, help="bin width in bp")
    p.add_argument("--extend", type=int, default=100, help="extend each insertion +-N bp (coverage)")
    p.add_argument("--stat", default="mean", choices=["mean", "max", "sum"], help="per-bin summary (coverage)")
    p.add_argument("--normalize", action="store_true", help="scale to insertions per million")
    p.add_argument("--bedgraph", action="store_true",
                   help="also write PREFIX.bedGraph.gz (bgzipped bedGraph; default: bigWig and store only)")
    add_format_arg(p)
    add_filter_args(p)
    p.set_defaults(func=cmd_bin)

    p = sub.add_parser("windows", parents=[COMMON], help="cut noisy/clean window pairs from two array stores")
    p.add_argument("--noisy", required=True, help="noisy .tracks store")
    p.add_argument("--clean", required=True, help="clean .tracks store")
    p.add_argument("--clean-peaks", help="clean peak-signal .tracks store (peak labels)")
    p.add_argument("--chroms", required=True, help="comma-separated chromosomes to draw from")
    p.add_argument("--n", type=int, default=10_000, help="windows to sample")
    p.add_argument("--tile", action="store_true", help="tile the chromosomes instead of sampling")
    p.add_argument("--window", type=int, default=4096, help=WINDOW_HELP)
    p.add_argument("--target", type=int, default=1024, help=TARGET_HELP)
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    add_output_arg(p, "--output", required=True, help=".npz output")
    p.set_defaults(func=cmd_windows)

    p = sub.add_parser("simulate", parents=[COMMON],
                       help="a small synthetic ATAC-seq data set (genome, FASTQ, BAM, truth); with "
                                        "--fasta, paired FASTQ at a real fragments file's molecules")
    add_output_arg(p, "--outdir", ("--out-dir",), required=True, help="folder for the simulated files")
    p.add_argument("--chroms", type=int, default=2, help="synthetic chromosomes")
    p.add_argument("--chrom-length", type=int, default=2_000_000, help="bp per synthetic chromosome")
    p.add_argument("--fragments", metavar="N|FILE",
                   help="fragments to simulate (default 200000); with --fasta: a fragments file (chrom, start, end, "
                        "barcode, count; Tn5-shifted +4/-5 as 10x writes them) whose molecules are read")
    p.add_argument("--fasta", help="reference FASTA (plain or gzip) of --fragments FILE: write {prefix}_R1/R2.fastq.gz "
                                   "and {prefix}.fragments.tsv.gz (the fragments used)")
    p.add_argument("--read-length", type=int, default=50, help="bases per read (default 50)")
    p.add_argument("--error-rate", type=float, default=0.002,
                   help="with --fasta: mean substitution rate, rising along the read; qualities state it (default 0.002)")
    p.add_argument("--keep-chroms", help="with --fasta: comma-separated chromosomes to read (default: all)")
    p.add_argument("--max-fragments", type=int, help="with --fasta: stop after this many fragment lines")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--prefix", default="sim", help="file name prefix inside --outdir")
    p.set_defaults(func=cmd_simulate)
    add_align_parser(sub)
    add_samplesheet_parser(sub)
    add_registry_parsers(sub)  # registry serve | register | promote | compare | export
    add_denoise_parser(sub)
    add_scatter_parsers(sub)  # denoise-groups | merge
    add_evaluate_parser(sub)
    add_report_parser(sub)
    add_qc_parser(sub)

    add_pipeline_parser(sub)
    p = sub.add_parser("prepare", parents=[COMMON],
                       help="training and validation pairs (.npz) for the search, at several depths")
    p.add_argument("--insertions", required=True, help="noisy Tn5 insertions (BED6, or any reads input)")
    p.add_argument("--clean-bigwig", required=True, help="clean per-base coverage bigWig")
    p.add_argument("--clean-peaks", required=True, help="clean peaks (BED/narrowPeak): peak labels")
    p.add_argument("--chrom-sizes", required=True, help="chromosome sizes (name, length)")
    p.add_argument("--train-chroms", required=True, help="comma-separated training chromosomes")
    p.add_argument("--val-chroms", required=True, help="comma-separated validation chromosomes (tiled)")
    p.add_argument("--depths", default="0.1,0.2,1.0", help="keep-probabilities of the noisy inputs (default 0.1,0.2,1.0)")
    p.add_argument("--n-train", type=int, default=10_000,
                   help="training windows (default 10000; with --resample: windows per epoch)")
    p.add_argument("--regions", help="BED of where the clean track is defined (e.g. AtacWorks' labelled regions): "
                                     "windows whose target leaves them are not used")
    p.add_argument("--resample", action="store_true",
                   help="train.npz becomes a resampling source: fresh noisy inputs every epoch, thinned from the "
                        "clean library at depths drawn between the smallest and largest of --depths")
    p.add_argument("--clean-insertions",
                   help="with --resample: the clean library's reads/insertions (default: recovered exactly from "
                        "--clean-bigwig, which must be +-100 bp extended insertion coverage)")
    add_genome_args(p)
    p.add_argument("--sequence", choices=("fixed", "learned", "both"), default="fixed",
                   help="with --fasta: per-bin features (GC, CpG, N), each bin's bases for a learned sequence "
                        "tower, or both (default fixed)")
    p.add_argument("--window", type=int, default=4096, help=WINDOW_HELP)
    p.add_argument("--target", type=int, default=1024, help=TARGET_HELP)
    p.add_argument("--bin-size", type=int, default=25, help="bin width in bp")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    add_output_arg(p, "--outdir", ("--out",), required=True, help="folder for train.npz and val.npz")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("search", parents=[COMMON],
                       help="NASH architecture search (hill climbing with network morphisms + SGDR)")
    p.add_argument("--train", required=True, help="train.npz from 'prepare'")
    p.add_argument("--val", required=True, help="val.npz from 'prepare'")
    p.add_argument("--space", default="dilated1d", choices=["hilbert2d", "dilated1d", "atacworks"],
                   help="dilated1d (default, best measured), hilbert2d (the seed's), atacworks (the fixed "
                        "AtacWorks baseline: use --iterations 0)")
    p.add_argument("--loss", default="log-mse+pearson",
                   choices=["mse", "log-mse", "log-mse+pearson", "log-mse+pearson+mse", "atacworks"],
                   help="log-mse (MSE of log1p), log-mse+pearson (default: plus 1 - Pearson per window), "
                        "log-mse+pearson+mse (plus 0.0005 * MSE in original units), mse (the "
                        "seed's), atacworks (0.0005*MSE + 1-Pearson + BCE)")
    p.add_argument("--max-parameters", type=int, help="redraw children larger than this (e.g. to ship the model)")
    p.add_argument("--iterations", type=int, default=60, help="hill-climbing iterations (default 60)")
    p.add_argument("--children", type=int, default=8, help="children per iteration (default 8)")
    p.add_argument("--epochs", type=int, default=17, help="epochs per child, one cosine cycle (default 17)")
    p.add_argument("--lr-max", type=float, default=0.05, help="SGDR learning rate at the start of each cycle")
    p.add_argument("--lr-min", type=float, default=0.0, help="SGDR learning rate at the end of each cycle")
    p.add_argument("--initial-draws", type=int, default=10, help="random initial models (default 10)")
    p.add_argument("--initial-epochs", type=int, default=20, help="epochs per random initial model (default 20)")
    p.add_argument("--initial-model", help="start from this search folder's best model instead of a random search "
                                           "(continue an earlier search, or improve the champion)")
    p.add_argument("--peak-weight", type=float, default=1.0, help="weight of the peak BCE in the loss")
    p.add_argument("--batch-size", type=int, default=64, help="training windows per step")
    p.add_argument("--grad-clip", type=float, default=1.0,
                   help="clip each step's gradient norm to this (default 1.0; 0: off, as the seed trained)")
    p.add_argument("--max-train-windows", type=int, help="use only the first M training windows")
    p.add_argument("--no-mirror", action="store_true",
                   help="do not reverse half of each training batch (on by default: coverage is strand-symmetric)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto: cuda when available)")
    where.add_argument("--devices", metavar="D1,D2,...",
                       help="spread the --parallel-children workers over these devices of one node, in turn (e.g. "
                            "cuda:0,cuda:1; same results as one device)")
    p.add_argument("--parallel-children", type=int, default=1,
                   help="train K candidates at once in worker processes on the same device, or spread over "
                        "--devices (same results)")
    p.add_argument("--seed", type=int, default=0, help="search seed")
    p.add_argument("--resume", action="store_true", help="continue the search saved in --outdir")
    add_output_arg(p, "--outdir", ("--out",), required=True, help="output folder (must be empty unless --resume)")
    p.set_defaults(func=cmd_search)
    _finish_subcommands(parser)
    return parser


MAIN_EPILOG = """\
Where to write: --output FILE (one file), --out-prefix PREFIX (files sharing a prefix), --outdir DIR (a folder).
Every subcommand takes -v/--verbose, -q/--quiet and --progress auto|always|never; 'atacdenoise COMMAND --help'
ends with examples.

exit codes:
  0    done
  1    internal error (a bug: please report it; -v shows the traceback)
  2    bad input or usage (one line names the file or option), or no space left on device (previous
       outputs kept)
  130  interrupted (Ctrl-C); no partial output kept
  143  terminated (SIGTERM); no partial output kept

examples:
  atacdenoise simulate --outdir sim
  atacdenoise denoise --input sample.bam --chrom-sizes hg19.chrom.sizes --out-prefix out/sample
"""

# One or two real examples at the end of each subcommand's --help, by its command path.
EXAMPLES = {
    "insertions": ["atacdenoise insertions --input sim/sim.bam --output sim.insertions.bed.gz --stats"],
    "subsample": ["atacdenoise subsample --input sample.bam --fraction 0.1 --output sample.0.1.bam",
                  "atacdenoise subsample --input sample.bam --fraction 0.1,0.2 --output 'sample.{fraction}.bam'"],
    "peaks": ["atacdenoise peaks --input s.insertions.bed.gz --chrom-sizes chrom.sizes --out-prefix out/s"],
    "bin": ["atacdenoise bin --input s.insertions.bed.gz --chrom-sizes chrom.sizes --out-prefix out/s.coverage",
            "atacdenoise bin --input out/s.narrowPeak --chrom-sizes chrom.sizes --representation peak-signal "
            "--out-prefix out/s.peaks"],
    "windows": ["atacdenoise windows --noisy shallow.tracks --clean deep.tracks --chroms chr1 --n 1000 "
                "--output pairs.npz"],
    "simulate": ["atacdenoise simulate --outdir sim",
                 "atacdenoise simulate --fragments fragments.tsv.gz --fasta genome.fa.gz --outdir reads "
                 "--prefix yeast"],
    "align": ["atacdenoise align --fastq1 s_R1.fastq.gz --fastq2 s_R2.fastq.gz --fasta genome.fa --output s.bam",
              "atacdenoise align --fasta genome.fa --build-index index/"],
    "samplesheet check": ["atacdenoise samplesheet check assets/samplesheet_test.csv --no-file-check"],
    "registry serve": ["atacdenoise registry serve --workdir mlflow --port 5000"],
    "registry register": ["atacdenoise registry register search/ --data pairs/val.npz --genome hg19 "
                          "--tracking-uri http://127.0.0.1:5000 --alias challenger"],
    "registry resolve": ["atacdenoise registry resolve models:/atac-denoiser@champion "
                         "--tracking-uri http://127.0.0.1:5000"],
    "registry export": ["atacdenoise registry export search/ --data pairs/val.npz --genome hg19 --output model.onnx"],
    "registry promote": ["atacdenoise registry promote --version 3 --tracking-uri http://127.0.0.1:5000"],
    "registry compare": ["atacdenoise registry compare --challenger-version 3 --data pairs/val.npz "
                         "--tracking-uri http://127.0.0.1:5000"],
    "denoise": ["atacdenoise denoise --input new.bam --chrom-sizes hg19.chrom.sizes --out-prefix out/new",
                "atacdenoise denoise --input fragments.tsv.gz --model model.onnx --chrom-sizes S --out-prefix out/new",
                "atacdenoise denoise --input new.bam --chrom-sizes S --group 1/4 --out-prefix parts/new.1"],
    "denoise-groups": ["atacdenoise denoise-groups --chrom-sizes hg38.chrom.sizes --groups 4"],
    "merge": ["atacdenoise merge parts/new.1 parts/new.2 parts/new.3 parts/new.4 --out-prefix out/new"],
    "evaluate": ["atacdenoise evaluate --prediction new.denoised.bw --truth deep.bw --truth-peaks deep.narrowPeak "
                 "--peakprob new.peakprob.bw --json"],
    "report": ["atacdenoise report --denoised P.denoised.bw --peakprob P.peakprob.bw --peaks P.peaks.narrowPeak "
               "--noisy s.bam --chrom-sizes S --output P.report.html",
               "atacdenoise report --samplesheet reports.csv --chrom-sizes S --output all.report.html"],
    "qc": ["atacdenoise qc --input sample.bam --gtf genes.gtf --peaks sample.narrowPeak --out-prefix qc/sample"],
    "pipeline": ["atacdenoise pipeline --outdir results",
                 "atacdenoise pipeline --samplesheet samples.csv --fasta genome.fa.gz --outdir results"],
    "prepare": ["atacdenoise prepare --insertions s.insertions.bed.gz --clean-bigwig deep.bw --clean-peaks deep.bed "
                "--chrom-sizes S --train-chroms chr1,chr2 --val-chroms chr3 --outdir pairs"],
    "search": ["atacdenoise search --train pairs/train.npz --val pairs/val.npz --outdir search",
               "atacdenoise search --train pairs/train.npz --val pairs/val.npz --outdir search --resume"],
}


def subcommand_parsers(parser: argparse.ArgumentParser, path: str = ""):
    """(command path, parser) of every subcommand that runs something, e.g. ('registry serve', p)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from subcommand_parsers(sub, f"{path} {name}".strip())
    if path and parser.get_default("func") is not None:
        yield path, parser


def _finish_subcommands(parser: argparse.ArgumentParser) -> None:
    """The same voice everywhere: defaults in the help, examples at the end."""
    for path, p in subcommand_parsers(parser):
        p.formatter_class = HelpFormatter
        p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[path])


# The output (folder, file or prefix) each command writes, locked for the run (io/lock.py): a second run
# on the same output fails at once naming the first; a lock left by a dead run is taken over.
LOCKED_OUTPUTS = {"insertions": "output", "subsample": "output", "peaks": "out_prefix", "bin": "out_prefix",
                  "windows": "output", "simulate": "outdir", "prepare": "outdir", "search": "outdir",
                  "denoise": "out_prefix", "merge": "out_prefix", "align": "output", "report": "output",
                  "pipeline": "outdir"}


def _output_of(args) -> str | None:
    return getattr(args, LOCKED_OUTPUTS.get(args.command, ""), None)


def _output_lock(args):
    from contextlib import nullcontext

    from atacdenoise.io.lock import output_lock

    output = _output_of(args)
    return output_lock(output, f"atacdenoise {args.command} {output}") if output else nullcontext()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every ``atomic_path`` removes its temporary and the lock is released."""


def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; return the exit code: 0 done, 2 bad input or usage or a full disk, 130 interrupted, 143
    terminated, 1 internal error (the traceback only under -v)."""
    setup_logging()  # before parsing: a deprecated spelling logs its note while it is parsed
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    if not progress_wanted(args):
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # third-party bars follow too
    import signal
    import threading

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        with _output_lock(args):
            args.func(args)
    except InputError as err:
        log.error("error: %s", err)
        return 2
    except KeyboardInterrupt as err:
        log.error("%s; no partial output kept", "terminated" if isinstance(err, Terminated) else "interrupted")
        return 143 if isinstance(err, Terminated) else 130
    except Exception as err:  # a bug, not the user's input
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:  # outside every atomic_path (a lock file)
            log.error("error: no space left on device writing %s", err.filename or _output_of(args))
            return 2
        log.error("internal error: %s: %s", type(err).__name__, err, exc_info=bool(args.verbose))
        log.error("this is a bug in atacdenoise %s: please report it with the command line%s", __version__,
                  "" if args.verbose else " and the traceback that -v shows")
        return 1
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
