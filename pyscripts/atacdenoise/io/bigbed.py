"""narrowPeak as bigBed (bed6+4 with ENCODE's autoSql), written with pybigtools.

A bigBed is indexed and binary, so genome browsers (IGV, UCSC track hubs,
JBrowse) fetch only the region in view instead of loading the whole
narrowPeak. Debian ships no UCSC ``bedToBigBed``; pybigtools (the bigtools
Rust library, a manylinux wheel) writes the same format.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path

log = logging.getLogger(__name__)

# ENCODE's narrowPeak.as: the standard 6 BED fields and the 4 narrowPeak ones.
NARROWPEAK_AUTOSQL = """table narrowPeak
"BED6+4 Peaks of signal enrichment based on pooled, normalized (interpreted) data."
(
    string chrom;        "Reference sequence chromosome or scaffold"
    uint   chromStart;   "Start position in chromosome"
    uint   chromEnd;     "End position in chromosome"
    string name;         "Name given to a region (preferably unique). Use . if no name is assigned"
    uint   score;        "Indicates how dark the peak will be displayed in the browser (0-1000)"
    char[1]  strand;     "+ or - or . for unknown"
    float  signalValue;  "Measurement of average enrichment for the region"
    float  pValue;       "Statistical significance of signal value (-log10). Set to -1 if not used."
    float  qValue;       "Statistical significance with multiple-test correction applied (-log10). Set to -1 if not used."
    int   peak;          "Point-source called for this peak; 0-based offset from chromStart. Set to -1 if no point-source called."
)
"""
BIGBED_MAGIC = 0x8789F2EB
BED_FIELDS = 6  # the standard BED fields of bed6+4
DEFINED_FIELD_COUNT_OFFSET = 34  # bbi header: magic, version, zoomLevels, 3 offsets, fieldCount, definedFieldCount


def bigbed_path(narrowpeak: str | os.PathLike) -> Path:
    """Where a narrowPeak's bigBed goes: the same name with ``.bb`` for ``.narrowPeak``."""
    path = Path(narrowpeak)
    return path.with_suffix(".bb") if path.suffix == ".narrowPeak" else path.with_name(path.name + ".bb")


def write_narrowpeak_bigbed(narrowpeak: str | os.PathLike, chrom_sizes: dict[str, int],
                            output: str | os.PathLike | None = None) -> Path | None:
    """Write ``narrowpeak`` (sorted, clipped to ``chrom_sizes``, as our writers leave it) as a bigBed, atomically.

    Returns the bigBed's path, or None for a file without peaks (bigBed writers refuse an empty input, so
    there is no bigBed then, and an earlier one at ``output`` is removed; the narrowPeak stands alone). Streams the narrowPeak: memory does not grow
    with the number of peaks.
    """
    import pybigtools

    output = Path(output) if output is not None else bigbed_path(narrowpeak)
    if not _has_records(narrowpeak):
        log.info("no peaks in %s: no bigBed written", narrowpeak)
        output.unlink(missing_ok=True)  # an earlier run's would describe other peaks
        return None
    refused: list[InputError] = []  # pybigtools prints an error raised by the iterator and carries on
    with atomic_path(output) as tmp:
        entries = _entries(narrowpeak, chrom_sizes, refused)
        try:
            pybigtools.open(str(tmp), "w").write(dict(chrom_sizes), entries, autosql=NARROWPEAK_AUTOSQL)
        except RuntimeError:  # no entries at all, when the first line was refused
            if not refused:
                raise
        if refused:
            raise refused[0]
        _set_defined_field_count(tmp, BED_FIELDS)
    return output


def _has_records(narrowpeak: str | os.PathLike) -> bool:
    with open(narrowpeak) as fh:
        return any(line.strip() for line in fh)


def _entries(narrowpeak: str | os.PathLike, chrom_sizes: dict[str, int], refused: list[InputError]
             ) -> Iterator[tuple[str, int, int, str]]:
    """``(chrom, start, end, rest)`` per line; ``rest`` is the other 7 columns, tab-separated.

    Checked here because pybigtools only prints (and writes a truncated file) for a peak on an unknown
    chromosome or past its end; the error is handed back in ``refused`` and the entries stop.
    """
    with open(narrowpeak) as fh:
        for line_no, line in enumerate(fh, start=1):
            if line.strip():
                chrom, start, end, rest = line.rstrip("\n").split("\t", 3)
                if int(end) > chrom_sizes.get(chrom, -1):
                    refused.append(InputError(narrowpeak, f"line {line_no}: {chrom}:{start}-{end} is not within "
                                                          "the chrom sizes"))
                    return
                yield chrom, int(start), int(end), rest


def _set_defined_field_count(path: Path, count: int) -> None:
    """pybigtools counts every autoSql field as a standard BED one (10); UCSC's ``bedToBigBed -type=bed6+4``
    writes 6, and browsers read fields 7-10 as thickStart, thickEnd, itemRgb and blockCount otherwise."""
    with open(path, "r+b") as fh:
        if int.from_bytes(fh.read(4), "little") != BIGBED_MAGIC:
            raise RuntimeError(f"pybigtools wrote no little-endian bigBed at {path}")
        fh.seek(DEFINED_FIELD_COUNT_OFFSET)
        fh.write(count.to_bytes(2, "little"))
