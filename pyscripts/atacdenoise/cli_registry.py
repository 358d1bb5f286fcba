"""Subcommands ``registry serve|register|promote|compare|resolve`` and ``denoise``.

``cli.py`` calls :func:`add_registry_parsers` and :func:`add_denoise_parser`;
each ``cmd_*`` parses nothing and calls one library function.
"""

from __future__ import annotations

import argparse
import json
import logging
import os


from atacdenoise.cli_args import COMMON, add_blacklist_arg, add_format_arg, add_output_arg

log = logging.getLogger("atacdenoise.cli")


def _tracking_uri(args) -> str:
    from atacdenoise.errors import InputError

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise InputError(None, "set --tracking-uri or MLFLOW_TRACKING_URI")
    return uri


def cmd_registry_serve(args) -> None:
    from atacdenoise.registry.server import serve

    serve(args.workdir, backend=args.backend, artifacts=args.artifacts, host=args.host, port=args.port)


def cmd_registry_export(args) -> None:
    from atacdenoise.registry.register import export_search

    print(json.dumps(export_search(args.search_dir, args.output, data=args.data, genome=args.genome,
                                   device=args.device)))


def cmd_registry_register(args) -> None:
    from atacdenoise.registry.register import register_search

    result = register_search(args.search_dir, _tracking_uri(args), name=args.name, data=args.data,
                             genome=args.genome, experiment=args.experiment, attempts=args.attempts,
                             backoff=args.backoff, timeout=args.timeout, alias=args.alias)
    print(json.dumps(result))


def cmd_registry_promote(args) -> None:
    from atacdenoise.registry.register import promote

    promote(_tracking_uri(args), args.name, args.version, args.alias)
    log.info("models:/%s@%s -> version %s", args.name, args.alias, args.version)


def cmd_registry_resolve(args) -> None:
    from atacdenoise.registry.resolve import resolve_model

    result = resolve_model(args.model, args.tracking_uri, onnx_output=args.output)
    print(json.dumps(result, indent=2))
    log.info("%s -> %s (onnx sha256 %s)", result["model"], result["resolved_uri"], result["onnx_sha256"][:12])


def cmd_registry_compare(args) -> None:
    from atacdenoise.registry.register import compare, format_comparison

    print(format_comparison(compare(_tracking_uri(args), args.name, args.challenger_version, args.data,
                                    alias=args.alias)))


def cmd_denoise(args) -> None:
    from atacdenoise.cli_args import progress_wanted
    from atacdenoise.denoise import bundled_model, denoise
    from atacdenoise.io.chromsizes import read_chrom_sizes

    from atacdenoise.tracks.channels import parse_annotation_args

    annotations = parse_annotation_args(args.annotation)
    model = args.model or bundled_model(annotations, args.fasta)
    chrom_sizes = read_chrom_sizes(args.chrom_sizes)
    outputs = denoise(args.input, model, chrom_sizes, args.out_prefix, fmt=args.fmt,
                      batch_size=args.batch_size, threads=args.threads, genome=args.genome,
                      tracking_uri=args.tracking_uri, threshold=args.threshold, progress=progress_wanted(args),
                      fasta=args.fasta, annotations=annotations, library_size=args.library_size,
                      chroms=_chroms_to_denoise(args, chrom_sizes), bedgraph=args.bedgraph,
                      blacklist=args.blacklist, precision=args.precision, exact_values=args.exact_values,
                      peakprob=not args.no_peakprob)
    for path in outputs.values():
        print(path)


def _chroms_to_denoise(args, chrom_sizes: dict[str, int]) -> list[str] | None:
    """--chroms as a list, --group I/N as its chromosomes, or None (all)."""
    if args.group:
        from atacdenoise.denoise.scatter import group_chroms

        return group_chroms(chrom_sizes, args.group)
    return args.chroms.split(",") if args.chroms else None


ANNOTATION_HELP = ("annotation channel, repeatable: tss=GTF/GFF3/BED6, cpg_islands=BED, ctcf_sites=BED, "
                   "blacklist=BED (a mask), or any NAME=BED/bigWig of your own")


def add_genome_args(p: argparse.ArgumentParser) -> None:
    """The genome channels' files, spelled the same for 'prepare' and 'denoise'."""
    p.add_argument("--fasta", help="reference genome FASTA (plain, gzip or bgzip): DNA sequence channels")
    p.add_argument("--annotation", action="append", metavar="NAME=FILE", help=ANNOTATION_HELP)


def _add_tracking_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", help="MLflow tracking server (default: $MLFLOW_TRACKING_URI)")


def add_registry_parsers(subparsers) -> None:
    registry = subparsers.add_parser("registry", help="MLflow model registry: serve, register, promote, compare, resolve")
    sub = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")

    p = sub.add_parser("serve", parents=[COMMON], help="start an MLflow tracking server and wait until healthy")
    p.add_argument("--workdir", default="mlflow", help="folder for the SQLite database, artifacts and log "
                                                      "(kept and reused by the next serve)")
    p.add_argument("--backend", help="backend store URI (default: SQLite in --workdir; e.g. postgresql://...)")
    p.add_argument("--artifacts", help="artifact store (default: --workdir/artifacts; e.g. s3://bucket, with "
                                       "MLFLOW_S3_ENDPOINT_URL for S3-compatible stores)")
    p.add_argument("--host", default="127.0.0.1", help="address the server listens on")
    p.add_argument("--port", type=int, help="port to listen on (default: a free port)")
    p.set_defaults(func=cmd_registry_serve)

    p = sub.add_parser("register", parents=[COMMON],
                       help="log a finished search folder and register its best model (ONNX)")
    p.add_argument("search_dir", help="search output folder (best_model.json/.pt, history.jsonl, summary.json)")
    p.add_argument("--name", default="atac-denoiser", help="registered model name (default atac-denoiser)")
    p.add_argument("--data", help="pairs .npz (e.g. val.npz): input contract and parity-check windows")
    p.add_argument("--genome", default="unknown", help="genome build of the training data (e.g. hg19)")
    p.add_argument("--experiment", default="atacdenoise-search", help="MLflow experiment of the logged run")
    p.add_argument("--attempts", type=int, default=5, help="tries to reach the server (default 5)")
    p.add_argument("--backoff", type=float, default=1.0, help="first retry delay in s, doubled each time")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="give up when the server makes no progress for this many seconds (default 30; a dead "
                        "server is noticed in seconds); rerunning completes the same version")
    p.add_argument("--alias", help="point this alias (e.g. challenger) at the version once it is complete")
    _add_tracking_arg(p)
    p.set_defaults(func=cmd_registry_register)

    p = sub.add_parser("resolve", parents=[COMMON],
                       help="pin models:/NAME@ALIAS to its current version and ONNX sha256 (JSON)")
    p.add_argument("model", help="models:/NAME@ALIAS (or models:/NAME/VERSION)")
    p.add_argument("--output", metavar="FILE", help="also save the resolved version's ONNX file here (what the "
                                                    "pipeline's DENOISE reads; default: none, only the JSON)")
    _add_tracking_arg(p)
    p.set_defaults(func=cmd_registry_resolve)

    p = sub.add_parser("export", parents=[COMMON],
                       help="export a search's best model to ONNX (parity-checked), without a server")
    p.add_argument("search_dir", help="search output folder")
    add_output_arg(p, "--output", required=True, help="model.onnx to write")
    p.add_argument("--data", help="pairs .npz (e.g. val.npz): input contract and parity-check windows")
    p.add_argument("--genome", default="unknown", help="genome build of the training data (e.g. hg19)")
    p.add_argument("--device", default="cpu", help="device to export from: cpu or cuda (default cpu)")
    p.set_defaults(func=cmd_registry_export)

    p = sub.add_parser("promote", parents=[COMMON], help="point an alias (default champion) at a model version")
    p.add_argument("--name", default="atac-denoiser", help="registered model name")
    p.add_argument("--version", required=True, help="model version to point the alias at")
    p.add_argument("--alias", default="champion", help="alias to set")
    _add_tracking_arg(p)
    p.set_defaults(func=cmd_registry_promote)

    p = sub.add_parser("compare", parents=[COMMON],
                       help="champion vs challenger (MSE, Pearson, AUPRC) on held-out windows")
    p.add_argument("--name", default="atac-denoiser", help="registered model name")
    p.add_argument("--challenger-version", required=True, help="model version to compare with the alias")
    p.add_argument("--alias", default="champion", help="the alias to compare against (default champion)")
    p.add_argument("--data", required=True, help="held-out pairs .npz")
    _add_tracking_arg(p)
    p.set_defaults(func=cmd_registry_compare)


def add_denoise_parser(subparsers) -> None:
    p = subparsers.add_parser("denoise", parents=[COMMON],
                              help="denoise a shallow library with an ONNX model (no torch needed)")
    p.add_argument("--input", required=True, help="BAM, insertions BED, fragments or coverage bigWig")
    p.add_argument("--model", help="model.onnx, models:/NAME@ALIAS or a bundled model's name, e.g. "
                                    "atac-denoiser-counts-small: 3.7x less model work (default: the bundled model "
                                    "for the files given, see registry/models/)")
    p.add_argument("--chrom-sizes", required=True, help="chromosome sizes (name, length) of the input's genome")
    add_output_arg(p, "--out-prefix", required=True,
                   help="writes PREFIX.denoised.bw, PREFIX.peakprob.bw, PREFIX.peaks.narrowPeak, PREFIX.peaks.bb "
                        "(when there are peaks), PREFIX.provenance.json and PREFIX.igv.xml (an IGV session)")
    p.add_argument("--bedgraph", action="store_true",
                   help="also write PREFIX.denoised.bedGraph.gz and PREFIX.peakprob.bedGraph.gz (bgzipped; default: "
                        "bigWig only)")
    p.add_argument("--library-size", type=float, metavar="N",
                   help="insertions in the whole library, when --input holds only part of it (e.g. one "
                        "chromosome); the depth is then N over the nuclear genome of --chrom-sizes. "
                        "Default: measured on the input (mitochondria and pile-ups left out)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--chroms", help="comma-separated chromosomes to denoise (default: all with insertions); "
                                        "the depth is measured on the whole input all the same")
    which.add_argument("--group", metavar="I/N",
                       help="denoise the I-th of N chromosome groups balanced by length (see 'atacdenoise "
                            "denoise-groups'); 'atacdenoise merge' gathers the N output sets into one run's")
    p.add_argument("--genome", help="genome build of the input; must match the model's")
    p.add_argument("--batch-size", type=int, default=64, help="windows per ONNX Runtime call")
    p.add_argument("--threads", type=int, help="onnxruntime threads (default: all cores)")
    p.add_argument("--threshold", type=float, default=0.5, help="peak probability threshold (default 0.5)")
    p.add_argument("--precision", choices=("auto", "int8", "float32"), default="auto",
                   help="int8: the model's trunk in int8, calibrated on this input and used only when it agrees "
                        "with float32 there (~2.4x less model work, not exact); float32: as exported; auto "
                        "(default): int8 when the input's chromosomes hold 100 Mb or more")
    p.add_argument("--exact-values", action="store_true",
                   help="store the model's float32 outputs as they are (default: denoised values to 0.05%% and peak "
                        "probabilities to 0.001, about half the bytes; peaks are called from the exact values)")
    p.add_argument("--no-peakprob", action="store_true",
                   help="write no PREFIX.peakprob.bw (nor its bedGraph): half the track writing, the larger part of "
                        "a whole genome's time; peaks are still called from the probabilities ('report' and the "
                        "pipeline need the track)")
    add_blacklist_arg(p)
    add_format_arg(p)
    add_genome_args(p)
    _add_tracking_arg(p)
    p.set_defaults(func=cmd_denoise)
