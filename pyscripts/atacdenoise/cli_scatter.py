"""Subcommands ``denoise-groups`` and ``merge``: one sample denoised as parallel tasks, then gathered.

``cli.py`` calls :func:`add_scatter_parsers`; the work lives in ``denoise/scatter.py`` and ``denoise/merge.py``.
"""

from __future__ import annotations

from atacdenoise.cli_args import COMMON, add_output_arg


def cmd_denoise_groups(args) -> None:
    from atacdenoise.denoise.scatter import chrom_groups
    from atacdenoise.io.chromsizes import read_chrom_sizes

    for group in chrom_groups(read_chrom_sizes(args.chrom_sizes), args.groups):
        print(",".join(group))


def cmd_merge(args) -> None:
    from atacdenoise.denoise.merge import merge_outputs

    for path in merge_outputs(args.prefixes, args.out_prefix).values():
        print(path)


def add_scatter_parsers(subparsers) -> None:
    p = subparsers.add_parser("denoise-groups", parents=[COMMON],
                              help="split the chromosomes into N groups balanced by length, one comma-separated "
                                   "group per line (for denoise --chroms)")
    p.add_argument("--chrom-sizes", required=True, help="chromosome sizes (name, length)")
    p.add_argument("--groups", type=int, required=True,
                   help="number of groups (fewer when there are fewer chromosomes)")
    p.set_defaults(func=cmd_denoise_groups)

    p = subparsers.add_parser("merge", parents=[COMMON],
                              help="gather the output sets of denoise runs on chromosome groups into one run's")
    p.add_argument("prefixes", nargs="+", metavar="PREFIX",
                   help="--out-prefix of each 'atacdenoise denoise --chroms/--group' run of the same input and model")
    add_output_arg(p, "--out-prefix", required=True,
                   help="writes PREFIX.denoised.bw, PREFIX.peakprob.bw, PREFIX.peaks.narrowPeak, "
                        "PREFIX.provenance.json (and PREFIX.denoised.bedGraph.gz, PREFIX.peakprob.bedGraph.gz when "
                        "the groups were run with --bedgraph; some groups only is refused)")
    p.set_defaults(func=cmd_merge)
