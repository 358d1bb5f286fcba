"""Options several subcommands share, spelled once (read filters, input format, chrom sizes).

Kept apart from ``cli.py`` so that the subcommand modules (``cli_qc`` ...) need not import the CLI
that imports them.
"""

from __future__ import annotations

import argparse

from atacdenoise.errors import InputError


def read_filter(args):
    from atacdenoise.io.reads import ReadFilter

    return ReadFilter(
        min_mapq=args.min_mapq,
        exclude_chroms=tuple(c for c in args.exclude_chroms.split(",") if c),
        keep_duplicates=args.keep_duplicates,
        keep_improper_pairs=args.keep_improper_pairs,
        shift_plus=args.shift_plus,
        shift_minus=args.shift_minus,
    )

def add_filter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("BAM read filters")
    g.add_argument("--min-mapq", type=int, default=30, help="drop reads below this MAPQ (default 30)")
    g.add_argument("--exclude-chroms", default="chrM,MT,M", help="comma-separated contigs to drop (default chrM,MT,M)")
    g.add_argument("--keep-duplicates", action="store_true", help="keep duplicate-flagged reads")
    g.add_argument("--keep-improper-pairs", action="store_true", help="keep paired reads not in a proper pair")
    g.add_argument("--shift-plus", type=int, default=4, help="Tn5 shift on the plus strand (default +4)")
    g.add_argument("--shift-minus", type=int, default=-5, help="Tn5 shift on the minus strand (default -5)")

def add_format_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", dest="fmt", default="auto", choices=["auto", "bam", "insertions", "fragments", "bigwig"],
                   help="input format (default: detect from name and content)")

def chrom_sizes_of(args):
    """Chrom sizes from --chrom-sizes, or from the BAM header when the input is a BAM."""
    from atacdenoise.io.chromsizes import read_chrom_sizes

    if args.chrom_sizes:
        return read_chrom_sizes(args.chrom_sizes)
    from atacdenoise.io.reads import detect_format

    if (args.fmt if args.fmt != "auto" else detect_format(args.input)) == "bam":
        from atacdenoise.io.reads import bam_chrom_sizes

        return bam_chrom_sizes(args.input)
    raise InputError(args.input, "--chrom-sizes is required for non-BAM inputs")
