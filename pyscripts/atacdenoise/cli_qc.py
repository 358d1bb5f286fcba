"""Subcommand ``qc``: the ATAC-seq QC numbers, plots and MultiQC files of one library.

``cli.py`` registers it with ``add_qc_parser(sub)``; the work is
:func:`atacdenoise.evaluate.qc.run_qc`.
"""

from __future__ import annotations

import json
import logging

from atacdenoise.cli_args import COMMON

log = logging.getLogger("atacdenoise.cli")


def cmd_qc(args) -> None:
    from atacdenoise.cli_args import chrom_sizes_of, read_filter
    from atacdenoise.evaluate.qc import run_qc

    qc, written = run_qc(args.input, chrom_sizes_of(args), args.out_prefix, fmt=args.fmt, gtf=args.gtf, peaks=args.peaks,
                read_filter=read_filter(args), sample=args.sample, plots=not args.no_plots)
    summary = {k: qc.get(k) for k in ("n_insertions", "fraction_chrM", "fraction_duplicates", "nrf", "pbc1",
                                      "pbc2", "tss_enrichment", "frip") if qc.get(k) is not None}
    print(json.dumps(summary))
    for path in written:
        log.info("wrote %s", path)


def add_qc_parser(subparsers) -> None:
    from atacdenoise.cli_args import add_filter_args, add_output_arg

    p = subparsers.add_parser("qc", parents=[COMMON],
                              help="ATAC QC: TSS enrichment, fragment lengths, chrM, duplicates, "
                                         "complexity, FRiP; plots and MultiQC files")
    p.add_argument("--input", required=True, help="BAM, fragments (.tsv[.gz]) or insertions BED")
    p.add_argument("--format", dest="fmt", default="auto", choices=["auto", "bam", "insertions", "fragments"],
                   help="input format (default: detect from name and content)")
    p.add_argument("--chrom-sizes", help="chromosomes to read (default: the BAM header); keep chrM in it to "
                                         "measure fraction_chrM")
    p.add_argument("--gtf", help="genes (GTF/GFF3 'gene' records, or BED6 of TSSs): TSS enrichment and profile")
    p.add_argument("--peaks", help="peaks (narrowPeak/BED): FRiP")
    add_output_arg(p, "--out-prefix", required=True,
                   help="writes PREFIX.qc.json, PREFIX.fragment_lengths.png, PREFIX.tss_profile.png and "
                        "PREFIX.atacdenoise_qc_*_mqc.json (MultiQC custom content)")
    p.add_argument("--sample", help="sample name in the MultiQC files (default: the prefix's file name)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_filter_args(p)
    p.set_defaults(func=cmd_qc)
