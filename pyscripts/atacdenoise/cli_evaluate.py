"""Subcommands ``evaluate`` and ``report``.

``cli.py`` calls :func:`add_evaluate_parser` and :func:`add_report_parser`;
each ``cmd_*`` parses nothing and calls one library function.
"""

from __future__ import annotations

import json

from atacdenoise.cli_args import COMMON, add_output_arg


def cmd_evaluate(args) -> None:
    from atacdenoise.evaluate.evaluate import evaluate, format_table

    result = evaluate(args.prediction, args.truth, truth_peaks=args.truth_peaks, regions=args.regions,
                      peakprob=args.peakprob, peaks=args.peaks, chroms=_split(args.chroms), model_units=args.model_units,
                      extend=args.extend)
    print(json.dumps(result, indent=1) if args.json else format_table(result))


def cmd_report(args) -> None:
    from atacdenoise.errors import InputError
    from atacdenoise.evaluate.report import Settings, make_report, make_samples_report, read_report_samplesheet

    one_sample = {"--denoised": args.denoised, "--peakprob": args.peakprob, "--peaks": args.peaks,
                  "--noisy": args.noisy, "--truth": args.truth, "--truth-peaks": args.truth_peaks,
                  "--regions": args.regions, "--provenance": args.provenance, "--shallow-peaks": args.shallow_peaks}
    if args.samplesheet:
        given = [k for k, v in one_sample.items() if v]
        if given:
            raise InputError(args.samplesheet, f"{', '.join(given)} belong in the samplesheet's columns, "
                                               "not beside --samplesheet")
        settings = Settings(chroms=_split(args.chroms), n_strong=args.n_strong, n_random=args.n_random,
                            locus_bp=args.locus_bp, seed=args.seed, cpm=args.model_units, fmt=args.fmt,
                            extend=args.extend)
        print(make_samples_report(read_report_samplesheet(args.samplesheet), args.chrom_sizes, args.output, settings,
                                  search_dir=args.search_dir, model_card=args.model_card, baselines=args.baselines,
                                  model_note=args.model_note, genes=args.genes, progress=not args.quiet))
        return
    missing = [k for k in ("--denoised", "--peakprob", "--peaks", "--noisy") if not one_sample[k]]
    if missing:
        raise InputError(None, f"report needs {', '.join(missing)} (or --samplesheet for several samples)")
    print(make_report(args.denoised, args.peakprob, args.peaks, args.noisy, args.chrom_sizes, args.output,
                      truth=args.truth, truth_peaks=args.truth_peaks, regions=args.regions,
                      search_dir=args.search_dir, model_card=args.model_card, baselines=args.baselines,
                      chroms=_split(args.chroms), n_strong=args.n_strong, n_random=args.n_random,
                      locus_bp=args.locus_bp, seed=args.seed, cpm=args.model_units, fmt=args.fmt, extend=args.extend,
                      progress=not args.quiet, model_note=args.model_note, genes=args.genes,
                      provenance=args.provenance, shallow_peaks=args.shallow_peaks))


def _split(text: str | None) -> list[str] | None:
    return [c for c in text.split(",") if c] if text else None


def add_evaluate_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", parents=[COMMON],
                              help="per-base metrics (AtacWorks') and the seed's window MSE vs a truth")
    p.add_argument("--prediction", required=True, help="predicted track (bigWig), e.g. PREFIX.denoised.bw")
    p.add_argument("--truth", required=True, help="truth track (bigWig), e.g. the deep library's coverage")
    p.add_argument("--peakprob", help="peak probability bigWig: the score for AUROC/AUPRC (default: the prediction)")
    p.add_argument("--peaks", help="called peaks (narrowPeak/BED): base-level precision, recall, F1")
    p.add_argument("--truth-peaks", help="truth peaks (BED): in/outside-peak metrics and AUROC/AUPRC labels")
    p.add_argument("--regions", help="BED of where the truth is defined; only these bases are scored (default: all)")
    p.add_argument("--chroms", help="comma-separated chromosomes to score (default: all of the truth's)")
    p.add_argument("--model-units", "--cpm", default="none", choices=["none", "truth", "both"],
                   help="rescale the truth (or both tracks) from their library's depth to the units of 'denoise' "
                        "output (coverage at 1 insertion per 20 bp); changes MSE only (default none). "
                        "--cpm is the old spelling")
    p.add_argument("--extend", type=int, default=100,
                   help="insertion extension of the tracks, for --model-units (default 100)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_evaluate)


def add_report_parser(subparsers) -> None:
    p = subparsers.add_parser("report", parents=[COMMON],
                              help="one self-contained HTML report of one or several denoised samples")
    p.add_argument("--denoised", help="PREFIX.denoised.bw (one sample; or use --samplesheet)")
    p.add_argument("--peakprob", help="PREFIX.peakprob.bw")
    p.add_argument("--peaks", help="PREFIX.peaks.narrowPeak")
    p.add_argument("--noisy", help="the shallow input: coverage bigWig, insertions BED, fragments or BAM")
    p.add_argument("--samplesheet",
                   help="CSV, one row per sample: sample,denoised,peakprob,peaks,noisy[,truth,truth_peaks,regions,"
                        "provenance,qc] (paths relative to the CSV's folder); the page starts with a table across "
                        "samples")
    p.add_argument("--chrom-sizes", required=True, help="chromosome sizes (name, length)")
    add_output_arg(p, "--output", required=True, help="report .html to write")
    p.add_argument("--truth", help="truth bigWig (deep library): adds truth panels, scatter and metrics")
    p.add_argument("--truth-peaks", help="truth peaks (BED)")
    p.add_argument("--regions", help="BED of where the truth is defined (default: everywhere)")
    p.add_argument("--search-dir", help="NASH search folder (history.jsonl, summary.json): search curve and model size")
    p.add_argument("--model-card", help="model card (markdown)")
    p.add_argument("--genes", help="genes (GTF/GFF3 'gene' records, or a BED): a gene/TSS lane under each locus")
    p.add_argument("--provenance",
                   help="JSON object of what made the tracks (model, model_version, onnx_sha256, inputs, software, "
                        "...), shown as is (default: PREFIX.provenance.json beside --denoised, when there)")
    p.add_argument("--shallow-peaks", help="MACS3 peaks called on the shallow input (narrowPeak): with --truth, "
                                           "a 'MACS3 on the shallow input' column in the metrics")
    p.add_argument("--model-note", help="one line at the top of the page naming the model that made the tracks")
    p.add_argument("--baselines", help="JSON {method: {metric: value}} to compare against")
    p.add_argument("--chroms", help="comma-separated chromosomes to show and score (default: all shared)")
    p.add_argument("--n-strong", type=int, default=4, help="loci at the strongest peaks (default 4)")
    p.add_argument("--n-random", type=int, default=4, help="loci drawn at random (default 4)")
    p.add_argument("--locus-bp", type=int, default=20_000, help="width of each locus panel (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random loci (default 0)")
    p.add_argument("--model-units", "--cpm", action="store_true",
                   help="score the truth (and the noisy baseline) in the denoised track's units (coverage at 1 "
                        "insertion per 20 bp; changes MSE only). --cpm is the old spelling")
    p.add_argument("--extend", type=int, default=100, help="insertion extension for coverage (default 100)")
    p.add_argument("--format", dest="fmt", default="auto", choices=["auto", "bam", "insertions", "fragments", "bigwig"],
                   help="format of --noisy (default: detect)")
    p.set_defaults(func=cmd_report)
