"""Chromosome sizes: the one list of contigs every step agrees on."""

from __future__ import annotations

import os
from pathlib import Path

from atacdenoise.errors import InputError

MAX_CHROM_LENGTH = 2**32 - 1  # bigWig stores lengths as uint32; the longest known chromosome is ~2.2e9 bp


def read_chrom_sizes(path: str | os.PathLike) -> dict[str, int]:
    """Read a two-column ``chrom<TAB>length`` file, keeping file order."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "chrom sizes file does not exist")
    if path.is_dir():
        raise InputError(path, "is a folder, expected a chrom sizes file (chrom<TAB>length per line)")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(path, f"cannot read the chrom sizes file ({err.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        raise InputError(path, "chrom sizes file is gzip-compressed; decompress it (gunzip) first")
    try:
        text = raw.decode()
    except UnicodeDecodeError as err:
        line_no = raw[:err.start].count(b"\n") + 1
        raise InputError(path, f"line {line_no}: not text (binary byte 0x{raw[err.start]:02x}); expected "
                               f"'chrom<TAB>length' lines") from None
    if "\0" in text:
        raise InputError(path, "not text (contains NUL bytes); expected 'chrom<TAB>length' lines")
    sizes: dict[str, int] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 2 or not fields[1].isdigit() or int(fields[1]) <= 0:
            raise InputError(path, f"line {line_no}: expected 'chrom<TAB>positive length', got {line!r}")
        if int(fields[1]) > MAX_CHROM_LENGTH:
            raise InputError(path, f"line {line_no}: length {int(fields[1]):,} of {fields[0]} is beyond what a bigWig "
                                   f"holds ({MAX_CHROM_LENGTH:,}); is column 2 a length?")
        if fields[0] in sizes:
            raise InputError(path, f"line {line_no}: chromosome {fields[0]} listed twice")
        sizes[fields[0]] = int(fields[1])
    if not sizes:
        raise InputError(path, "chrom sizes file is empty")
    return sizes


def write_chrom_sizes(path: str | os.PathLike, sizes: dict[str, int]) -> None:
    Path(path).write_text("".join(f"{c}\t{n}\n" for c, n in sizes.items()))


def naming_hint(names: set[str] | list[str], sizes: dict[str, int]) -> str:
    """Explain a chromosome-naming mismatch such as ``1`` vs ``chr1``."""
    names = set(names)
    has_chr_input = any(n.startswith("chr") for n in names)
    has_chr_sizes = any(n.startswith("chr") for n in sizes)
    if has_chr_input and not has_chr_sizes:
        return "input names chromosomes like 'chr1' but the chrom sizes use '1'"
    if has_chr_sizes and not has_chr_input:
        return "input names chromosomes like '1' but the chrom sizes use 'chr1'"
    shown = ", ".join(sorted(names)[:5])
    return f"none of its chromosomes ({shown}) are in the chrom sizes"


def check_shared_chroms(path: str | os.PathLike, names, sizes: dict[str, int]) -> None:
    """Raise a clear error when ``names`` shares no chromosome with ``sizes``."""
    if not set(names) & set(sizes):
        raise InputError(path, naming_hint(names, sizes))


def select_chroms(sizes: dict[str, int], chroms: list[str] | None, source, where: str) -> dict[str, int]:
    """``sizes`` of the ``chroms`` asked for, in that order (all of ``sizes`` when None or empty).

    A chromosome ``sizes`` lacks is an InputError naming ``source``: "chromosome(s) X not in ``where``".
    """
    if not chroms:
        return sizes
    missing = [c for c in chroms if c not in sizes]
    if missing:
        raise InputError(source, f"chromosome(s) {', '.join(missing)} not in {where}")
    return {c: sizes[c] for c in chroms}
