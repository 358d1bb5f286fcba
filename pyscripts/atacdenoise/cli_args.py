"""Options several subcommands share, spelled once (read filters, input format, chrom sizes).

Kept apart from ``cli.py`` so that the subcommand modules (``cli_qc`` ...) need not import the CLI
that imports them.
"""

from __future__ import annotations

import argparse
import logging
import sys

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
        strict=args.strict,
    )

def add_filter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("BAM read filters")
    g.add_argument("--min-mapq", type=int, default=30, help="drop reads below this MAPQ (default 30)")
    g.add_argument("--exclude-chroms", default="chrM,MT,M", help="comma-separated contigs to drop (default chrM,MT,M)")
    g.add_argument("--keep-duplicates", action="store_true", help="keep duplicate-flagged reads")
    g.add_argument("--keep-improper-pairs", action="store_true", help="keep paired reads not in a proper pair")
    g.add_argument("--shift-plus", type=int, default=4, help="Tn5 shift on the plus strand (default +4)")
    g.add_argument("--shift-minus", type=int, default=-5, help="Tn5 shift on the minus strand (default -5)")
    p.add_argument("--strict", action="store_true",
                   help="an insertions BED or fragments line outside its chromosome (negative, or past the end) is "
                        "an error naming the line (default: dropped, counted in --stats, warned of once)")

def add_format_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", dest="fmt", default="auto", choices=["auto", "bam", "insertions", "fragments", "bigwig"],
                   help="input format (default: detect from name and content)")


def add_blacklist_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--blacklist", metavar="BED",
                   help="drop called peaks that overlap these regions (e.g. ENCODE's blacklist; default: keep all)")

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


# ---------------------------------------------------------------- one voice for every subcommand

log = logging.getLogger("atacdenoise")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Epilogs (the examples) kept as written; every option that takes a value ends its help with its default,
    in the ``(default X)`` form the hand-written helps use, unless the help already speaks of its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (text and text is not argparse.SUPPRESS and "default" not in text and action.option_strings
                and action.nargs != 0 and default is not None and default is not argparse.SUPPRESS):
            text += " (default %(default)s)"
        return text


class DeprecatedAlias(argparse.Action):
    """An old spelling of an option, kept working but hidden: stores into the new option's dest and
    logs one line naming the new spelling."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        kwargs.setdefault("help", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        log.warning("%s is deprecated; use %s", option_string, self.new)
        setattr(namespace, self.dest, values)


def add_output_arg(p: argparse.ArgumentParser, new: str, old: tuple[str, ...] = (), *, required: bool = False,
                   help: str, metavar: str | None = None) -> None:
    """Where a command writes, by one rule: ``--output FILE`` (one file), ``--out-prefix P`` (files sharing a
    prefix), ``--outdir DIR`` (a folder). ``old`` spellings stay as hidden, deprecated aliases."""
    dest = new.lstrip("-").replace("-", "_")
    metavar = metavar or {"--output": "FILE", "--out-prefix": "PREFIX", "--outdir": "DIR"}[new]
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument(new, dest=dest, metavar=metavar, help=help)
    for spelling in old:
        group.add_argument(spelling, dest=dest, metavar=metavar, action=DeprecatedAlias, new=new)


def _common_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("messages")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="more messages (debug details; tracebacks of internal errors)")
    g.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only, no progress bars")
    g.add_argument("--progress", default="auto", choices=["auto", "always", "never"],
                   help="progress bars: auto shows them when stderr is a terminal and not --quiet")
    return p


# -v/--verbose, -q/--quiet and --progress, the same on every subcommand: add_parser(..., parents=[COMMON]).
COMMON = _common_parser()


def progress_wanted(args) -> bool:
    """Whether to draw progress bars: ``--progress always|never``, else on a terminal unless --quiet."""
    mode = getattr(args, "progress", "auto")
    if mode != "auto":
        return mode == "always"
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (so captured stderr sees the messages)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class _Formatter(logging.Formatter):
    """``atacdenoise: message``; a warning says so (``atacdenoise: warning: message``)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        kind = "warning: " if record.levelno == logging.WARNING else ""
        return f"atacdenoise: {kind}{record.getMessage()}"


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """One ``atacdenoise: message`` handler on the root logger (installed once); level INFO, WARNING with
    -q (third-party loggers such as MLflow's follow it); -v adds atacdenoise's own DEBUG messages."""
    root = logging.getLogger()
    if not any(isinstance(h, _CurrentStderr) for h in root.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(_Formatter())
        root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    logging.getLogger("atacdenoise").setLevel(logging.DEBUG if verbose else logging.NOTSET)
