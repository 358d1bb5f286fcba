"""The seed's low-quality twin: keep each read (pair) or insertion with probability p.

BAM: a read is kept when a hash of its name and the seed falls below the
fraction, exactly as ``samtools view --subsample F --subsample-seed S`` does, so
mates stay together and results match samtools. Insertions and fragments: a
seeded Bernoulli per record. One uniform number per record serves every
fraction, so the 0.1 subsample is contained in the 0.2 subsample.

samtools' hash mixes short numeric read names (``"2"``, ``"14"``) badly when
the seed is 0: it can keep half the reads for a fraction of 0.1. We reproduce
that faithfully and warn when the kept fraction is far from the one asked.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import os
import sys
from contextlib import ExitStack
from functools import lru_cache
from pathlib import Path

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path
from atacdenoise.io.reads import is_header, open_text

log = logging.getLogger(__name__)

_MASK32 = 0xFFFFFFFF
_BATCH = 50_000  # records hashed (BAM) or lines drawn for (text) at once


def parse_fractions(text: str, option: str = "--fraction") -> list[float]:
    """``"0.1,0.2"`` -> ``[0.1, 0.2]``; each must lie in (0, 1] (InputError naming ``option`` otherwise)."""
    fractions = []
    for item in str(text).split(","):
        try:
            value = float(item)
        except ValueError:
            raise InputError(option, f"{item.strip()!r} is not a number") from None
        _check_fraction(value, item.strip(), option)
        fractions.append(value)
    return fractions


def _check_fraction(value: float, shown=None, option: str = "--fraction") -> None:
    if not 0 < value <= 1:  # also rejects NaN
        raise InputError(option, f"{shown if shown is not None else value} is outside (0, 1]")


# ---------------------------------------------------------------- samtools' hash

def _glibc_first_rand(seed: int) -> int:
    """The first ``rand()`` after ``srand(seed)`` in glibc (the TYPE_3 additive generator).

    samtools turns a non-zero ``--subsample-seed`` into ``srand(seed); seed = rand();``.
    """
    seed &= _MASK32
    word = seed or 1
    word = word - (1 << 32) if word >= 1 << 31 else word  # glibc keeps it as int32
    state = [word]
    for _ in range(30):
        hi = int(word / 127773)          # C division truncates towards zero
        word = 16807 * (word - hi * 127773) - 2836 * hi
        if word < 0:
            word += 2147483647
        state.append(word)
    state = [s & _MASK32 for s in state] + [s & _MASK32 for s in state[:3]]
    for i in range(34, 345):             # glibc discards the first 310 outputs
        state.append((state[i - 31] + state[i - 3]) & _MASK32)
    return state[344] >> 1


@lru_cache(maxsize=16)
def _samtools_seed(seed: int) -> int:
    return _glibc_first_rand(seed) if seed & _MASK32 else 0


def _wang_hash(key):
    """khash's ``__ac_Wang_hash`` on uint32 (numpy arrays wrap around like C)."""
    key = key + ~(key << 15)
    key = key ^ (key >> 10)
    key = key + (key << 3)
    key = key ^ (key >> 6)
    key = key + ~(key << 11)
    key = key ^ (key >> 16)
    return key


def _keep_values(names: list[bytes], seed: int) -> np.ndarray:
    """Vectorised :func:`samtools_keep_fraction` over many read names (bytes)."""
    if not names:
        return np.zeros(0)
    # NUL-padded byte matrix; khash's X31 stops at NUL, so padding leaves the hash alone.
    chars = np.array(names, dtype=bytes).view(np.int8).reshape(len(names), -1)
    chars = chars.astype(np.int64).astype(np.uint32)  # C's signed char, widened like (khint_t)*s
    h = chars[:, 0].copy()
    with np.errstate(over="ignore"):
        for column in chars[:, 1:].T:
            h = np.where(column != 0, (h << np.uint32(5)) - h + column, h)
        k = _wang_hash(h ^ np.uint32(_samtools_seed(seed)))
    return (k & np.uint32(0xFFFFFF)).astype(np.float64) / 0x1000000


def samtools_keep_fraction(qname: str, seed: int) -> float:
    """The number in [0, 1) samtools compares with the fraction for this read name."""
    return float(_keep_values([qname.encode()], seed)[0])


# ---------------------------------------------------------------- outputs

def _format_fraction(fraction: float) -> str:
    return np.format_float_positional(fraction, trim="-")


def _output_paths(output_template: str, fractions: list[float], input_path) -> list[str]:
    if len(fractions) > 1 and "{fraction}" not in output_template:
        raise InputError(output_template, "several fractions need '{fraction}' in the output name")
    paths = [output_template.replace("{fraction}", _format_fraction(f)) for f in fractions]
    if len(set(paths)) != len(paths):
        raise InputError(output_template, "two fractions give the same output name")
    if any(os.path.abspath(p) == os.path.abspath(input_path) for p in paths):
        raise InputError(output_template, "an output would overwrite the input")
    return paths


def _warn_if_skewed(path: str, fraction: float, kept: int, total: int) -> None:
    """Flag a kept fraction far outside binomial noise (pairs counted as one draw)."""
    if total == 0:
        return
    sd = math.sqrt(fraction * (1 - fraction) / max(total / 2, 1))
    observed = kept / total
    if abs(observed - fraction) > 6 * sd + 0.01:
        log.warning("%s: kept %.1f%% of records for fraction %s; samtools' name hash mixes these read names "
                    "poorly with this seed, try another --seed", path, 100 * observed, fraction)


# ---------------------------------------------------------------- BAM

def _header_with_pg(header, fraction: float, seed: int) -> dict:
    from atacdenoise import __version__

    header = header.to_dict()
    programs = header.setdefault("PG", [])
    taken = {pg.get("ID") for pg in programs}
    pg_id = next(i for i in itertools.chain(["atacdenoise"], (f"atacdenoise.{n}" for n in itertools.count(1)))
                 if i not in taken)
    entry = {"ID": pg_id, "PN": "atacdenoise", "VN": __version__,
             "CL": f"atacdenoise subsample --fraction {_format_fraction(fraction)} --seed {seed}"}
    if programs:
        entry["PP"] = programs[-1]["ID"]
    programs.append(entry)
    return header


def _record_total(bam) -> int | None:
    try:
        return bam.mapped + bam.unmapped
    except ValueError:  # no index
        return None


def _subsample_bam(input_path, paths: list[str], fractions: list[float], seed: int, progress: bool = True) -> None:
    import pysam
    from tqdm import tqdm

    try:
        bam = pysam.AlignmentFile(os.fspath(input_path), "rb")
    except (ValueError, OSError) as err:
        raise InputError(input_path, f"cannot read as BAM: {err}") from None
    with bam, ExitStack() as stack:
        sorted_by_coordinate = bam.header.to_dict().get("HD", {}).get("SO") == "coordinate"
        tmp_paths = [stack.enter_context(atomic_path(p)) for p in paths]
        index_tmp = [stack.enter_context(atomic_path(p + ".bai")) for p in paths] if sorted_by_coordinate else []
        outputs = [stack.enter_context(pysam.AlignmentFile(str(t), "wb", header=_header_with_pg(bam.header, f, seed)))
                   for t, f in zip(tmp_paths, fractions)]
        kept = np.zeros(len(fractions), dtype=np.int64)
        total = 0
        records = bam.fetch(until_eof=True)
        with tqdm(total=_record_total(bam), desc=f"subsampling {Path(input_path).name}", unit="read",
                  unit_scale=True, file=sys.stderr, disable=not progress) as bar:
            while batch := list(itertools.islice(records, _BATCH)):
                values = _keep_values([r.query_name.encode() if r.query_name else b"" for r in batch], seed)
                for out_index, (out, fraction) in enumerate(zip(outputs, fractions)):
                    keep = values < fraction
                    for record in itertools.compress(batch, keep):
                        out.write(record)
                    kept[out_index] += int(keep.sum())
                total += len(batch)
                bar.update(len(batch))
        for out in outputs:
            out.close()
        for tmp, bai in zip(tmp_paths, index_tmp):
            pysam.index(str(tmp), str(bai))
    for path, fraction, n_kept in zip(paths, fractions, kept):
        _warn_if_skewed(path, fraction, int(n_kept), total)


# ---------------------------------------------------------------- text (insertions, fragments)

def _chrom_rng(seed: int, chrom: str) -> np.random.Generator:
    """One generator per chromosome: draws do not depend on how the file is chunked."""
    chrom_key = int.from_bytes(hashlib.sha256(chrom.encode()).digest()[:8], "little")
    return np.random.default_rng([seed % (1 << 64), chrom_key])


def _subsample_text(input_path, paths: list[str], fractions: list[float], seed: int) -> None:
    rngs: dict[str, np.random.Generator] = {}
    with ExitStack() as stack:
        source = stack.enter_context(open_text(input_path, "rt"))
        sinks = [stack.enter_context(open_text(stack.enter_context(atomic_path(p)), "wt")) for p in paths]
        while lines := list(itertools.islice(source, _BATCH)):
            headers = np.array([is_header(line) for line in lines])
            chroms = [line.split("\t", 1)[0] for line in lines]
            values = np.full(len(lines), -1.0)  # headers go to every output
            # One uniform per record, run by run of equal chromosomes, from that chromosome's own stream.
            for chrom, run in itertools.groupby(range(len(lines)), key=lambda i: None if headers[i] else chroms[i]):
                run = list(run)
                if chrom is None:
                    continue
                if chrom not in rngs:
                    rngs[chrom] = _chrom_rng(seed, chrom)
                values[run[0] : run[-1] + 1] = rngs[chrom].random(len(run))
            for sink, fraction in zip(sinks, fractions):
                sink.writelines(itertools.compress(lines, values < fraction))


def subsample(
    input_path: str | os.PathLike,
    output_template: str,
    fractions: list[float],
    seed: int = 0,
    fmt: str = "auto",
    progress: bool = True,
) -> list[str]:
    """Write one subsample per fraction in a single pass; return the output paths.

    ``output_template`` contains ``{fraction}`` when several fractions are given.
    BAM outputs are indexed, bgzipped text outputs too when sorted (tabix). Outputs are written atomically.
    """
    if not fractions:
        raise InputError("--fraction", "no fraction given")
    for fraction in fractions:
        _check_fraction(fraction)
    if not os.path.exists(input_path):
        raise InputError(input_path, "input file does not exist")
    if fmt == "auto":
        from atacdenoise.io.reads import detect_format

        fmt = detect_format(input_path)
    paths = _output_paths(os.fspath(output_template), fractions, input_path)
    if fmt == "bam":
        _subsample_bam(input_path, paths, fractions, seed, progress)
    elif fmt in ("insertions", "fragments"):
        from atacdenoise.io.reads import write_tabix_index

        _subsample_text(input_path, paths, fractions, seed)
        for path in paths:  # bgzipped: indexed as the input was sorted (a subset keeps the order)
            if path.endswith(".gz"):
                write_tabix_index(path)
    else:
        raise InputError(input_path, f"cannot subsample a {fmt} file: give reads, insertions or fragments")
    return paths


def thin_positions(positions: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Keep each insertion with probability ``fraction`` (used to make noisy training depths)."""
    _check_fraction(fraction)
    positions = np.asarray(positions)
    return positions[rng.random(len(positions)) < fraction]
