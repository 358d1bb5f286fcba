"""Check a pipeline samplesheet before Nextflow spends hours on it.

A samplesheet is a CSV with the columns of ``assets/schema_input.json`` (the
schema nf-schema's ``samplesheetToList`` reads in main.nf, so both sides check
the same rules): ``sample, fastq_1, fastq_2, replicate, bam``, the first four as
nf-core/atacseq writes them. Each row is one lane: a FASTQ pair, a single FASTQ,
or a BAM. Rows of the same ``sample`` and ``replicate`` (1 when absent) are lanes
of one library, merged before alignment (BAM lanes: before filtering); see
:func:`read_libraries`. Checks, in order:

1. the header: a ``sample`` column, no unknown or repeated columns;
2. each row against the JSON schema (names, file suffixes, FASTQ xor BAM,
   replicate a whole number);
3. across rows: a library's lanes are all paired-end, all single-end or all BAM
   (the row that breaks it names the library's first lane), no file is given
   twice, FASTQ libraries are all paired or all single-end, and every file
   exists (relative paths are resolved against ``base_dir``, like Nextflow
   resolves them against the launch folder).

Every problem is reported at once, each naming its line, so one run of
``atacdenoise samplesheet check`` is enough to fix a sheet.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from atacdenoise.bundled import assets_dir
from atacdenoise.errors import InputError

SCHEMA_PATH = assets_dir() / "schema_input.json"


def load_schema(path: str | os.PathLike = SCHEMA_PATH) -> dict:
    with open(path) as fh:
        return json.load(fh)


_PROPERTIES = load_schema()["items"]["properties"]
COLUMNS = tuple(_PROPERTIES)   # from the schema: sample, fastq_1, fastq_2, replicate, bam
FILE_COLUMNS = tuple(c for c, spec in _PROPERTIES.items() if spec.get("format") == "file-path")
KIND_NAMES = {"paired": "paired-end FASTQ", "single": "single-end FASTQ", "bam": "BAM"}


@dataclass
class Sample:
    """One row of the sheet (one lane). ``id`` is the sheet's ``sample`` column; ``line`` the CSV line."""
    id: str
    fastq_1: str | None = None
    fastq_2: str | None = None
    bam: str | None = None
    replicate: int | None = None
    line: int = 0

    @property
    def kind(self) -> str:
        """``paired``, ``single`` or ``bam``."""
        if self.bam:
            return "bam"
        return "paired" if self.fastq_2 else "single"

    @property
    def library_id(self) -> str:
        """The pipeline's meta.id: ``SAMPLE`` without a replicate, ``SAMPLE_REP<N>`` with one (as nf-core/atacseq)."""
        return library_id(self.id, self.replicate)


def library_id(sample: str, replicate: int | None) -> str:
    """``SAMPLE`` or ``SAMPLE_REP<N>``: the same rule as ``libraryId`` in main.nf."""
    return sample if replicate is None else f"{sample}_REP{replicate}"


@dataclass
class Library:
    """The lanes (rows) of one sample and replicate: merged into one library before alignment or filtering."""
    id: str                    # SAMPLE or SAMPLE_REP<N>: the pipeline's meta.id
    sample: str
    replicate: int | None
    lanes: list[Sample]

    @property
    def kind(self) -> str:
        """``paired``, ``single`` or ``bam`` (every lane has the same, or the sheet is refused)."""
        return self.lanes[0].kind

    @property
    def single_end(self) -> bool:
        return self.kind == "single"

    @property
    def lines(self) -> list[int]:
        return [lane.line for lane in self.lanes]

    def files(self, column: str) -> list[str]:
        """The lanes' files of one column (``fastq_1``, ``fastq_2`` or ``bam``), in sheet order."""
        return [getattr(lane, column) for lane in self.lanes if getattr(lane, column)]


def _is_remote(path: str) -> bool:
    """s3://, https://, gs:// ... are staged by Nextflow; they cannot be checked here."""
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path) is not None


def _schema_message(error: jsonschema.ValidationError) -> str:
    """The schema's own ``errorMessage`` for the failing keyword's subschema when it has one."""
    column = error.path[-1] if error.path and isinstance(error.path[-1], str) else None
    if error.validator in ("oneOf", "anyOf", "not", "pattern", "type", "minimum") and "errorMessage" in error.schema:
        return error.schema["errorMessage"]
    if error.validator == "additionalProperties":
        return f"unknown column: {error.message}"
    if error.validator == "dependentRequired":
        return "fastq_2 given without fastq_1"
    return f"{column}: {error.message}" if column else error.message


def _typed(row: dict[str, str]) -> dict[str, object]:
    """Cells of integer columns as int when they read as one (as nf-schema casts CSV cells by the schema)."""
    out: dict[str, object] = dict(row)
    for column, value in row.items():
        if _PROPERTIES.get(column, {}).get("type") == "integer" and re.fullmatch(r"[+-]?\d+", value):
            out[column] = int(value)
    return out


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (line number, row with empty cells dropped) pairs."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        rows = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # blank lines are harmless
            if len(row) != len(header):
                rows.append((reader.line_num, {"__width__": f"{len(row)} fields, header has {len(header)}"}))
                continue
            rows.append((reader.line_num, {k: v.strip() for k, v in zip(header, row) if v.strip()}))
    return header, rows


def _header_problems(header: list[str]) -> list[str]:
    if not header or header == [""]:
        return ["line 1: empty file, expected a header such as 'sample,fastq_1,fastq_2,replicate' or "
                "'sample,fastq_1,fastq_2,bam'"]
    problems = []
    if "sample" not in header:
        problems.append("line 1: missing column 'sample'")
    if not set(FILE_COLUMNS) & set(header):
        problems.append("line 1: missing columns: need fastq_1 (and fastq_2) or bam")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        problems.append(f"line 1: unknown columns {', '.join(unknown)} (expected {', '.join(COLUMNS)})")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        problems.append(f"line 1: repeated columns {', '.join(repeated)}")
    return problems


def _row_label(line: int, row: dict[str, str]) -> str:
    return f"line {line} (sample {row['sample']!r})" if "sample" in row else f"line {line}"


def _file_problems(line: int, row: dict[str, str], base_dir: Path) -> list[str]:
    problems = []
    for column in FILE_COLUMNS:
        value = row.get(column)
        if not value or _is_remote(value):
            continue
        path = Path(value) if os.path.isabs(value) else base_dir / value
        if not path.is_file():
            problems.append(f"{_row_label(line, row)}: {column} file does not exist: {path}")
    return problems


def samplesheet_problems(path: str | os.PathLike, base_dir: str | os.PathLike | None = None,
                         check_files: bool = True, schema: dict | None = None) -> list[str]:
    """Every problem in the samplesheet, each naming its line; empty when it is fine."""
    path = Path(path)
    if not path.is_file():
        return ["samplesheet does not exist"]
    header, rows = _read_rows(path)
    problems = _header_problems(header)
    if problems:
        return problems
    if not rows:
        return ["no samples: the sheet has a header but no rows"]
    validator = jsonschema.Draft202012Validator((schema or load_schema())["items"])
    base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    first_lane: dict[str, tuple[int, str]] = {}     # library id -> (line, kind) of its first lane
    library_kinds: dict[str, int] = {}              # FASTQ layout -> first line of a library with it
    file_lines: dict[str, int] = {}
    for line, row in rows:
        if "__width__" in row:
            problems.append(f"line {line}: {row['__width__']}")
            continue
        typed = _typed(row)
        errors = sorted(validator.iter_errors(typed), key=lambda e: list(e.path))
        problems += [f"{_row_label(line, row)}: {msg}" for msg in dict.fromkeys(_schema_message(e) for e in errors)]
        if errors:
            continue
        lane = _sample(line, typed)
        library = lane.library_id
        if library in first_lane:
            first, kind = first_lane[library]
            if lane.kind != kind:
                problems.append(f"{_row_label(line, row)}: {KIND_NAMES[lane.kind]} lane, but the library's first lane "
                                f"(line {first}) is {KIND_NAMES[kind]}: the lanes of one sample and replicate are all "
                                "paired-end, all single-end or all BAM")
        else:
            first_lane[library] = (line, lane.kind)
            if lane.kind != "bam":
                library_kinds.setdefault(lane.kind, line)
        for column in FILE_COLUMNS:
            value = row.get(column)
            if value and value in file_lines:
                problems.append(f"{_row_label(line, row)}: {column} {value} is already given on line {file_lines[value]}")
            elif value:
                file_lines[value] = line
        if check_files:
            problems += _file_problems(line, row, base_dir)
    if len(library_kinds) > 1:
        problems.append(f"mixed single-end (first on line {library_kinds['single']}) and paired-end (first on line "
                        f"{library_kinds['paired']}) FASTQ rows: run them as two samplesheets")
    return problems


def _sample(line: int, row: dict[str, object]) -> Sample:
    return Sample(str(row["sample"]), row.get("fastq_1"), row.get("fastq_2"), row.get("bam"), row.get("replicate"),
                  line)


def read_samplesheet(path: str | os.PathLike, base_dir: str | os.PathLike | None = None,
                     check_files: bool = True) -> list[Sample]:
    """The rows (lanes) of a valid sheet, paths as written; InputError listing every problem otherwise.

    One :class:`Sample` per row: a sample sequenced on several lanes appears several times
    (use :func:`read_libraries` for the merged view the pipeline runs on)."""
    problems = samplesheet_problems(path, base_dir, check_files)
    if problems:
        raise InputError(path, "; ".join(problems))
    _, rows = _read_rows(Path(path))
    return [_sample(line, _typed(row)) for line, row in rows]


def group_lanes(samples: list[Sample]) -> list[Library]:
    """Rows -> libraries: lanes of one sample and replicate together, in order of first appearance."""
    libraries: dict[str, Library] = {}
    for lane in samples:
        key = lane.library_id
        if key not in libraries:
            libraries[key] = Library(key, lane.id, lane.replicate, [])
        libraries[key].lanes.append(lane)
    return list(libraries.values())


def read_libraries(path: str | os.PathLike, base_dir: str | os.PathLike | None = None,
                   check_files: bool = True) -> list[Library]:
    """The libraries of a valid sheet: one per sample and replicate, each with its lanes (rows) in sheet order.

    What the pipeline runs on: a library with several FASTQ lanes has them concatenated (CAT_FASTQ) before
    alignment, several BAM lanes are merged (SAMTOOLS_MERGE) before filtering; ``Library.id`` is the meta.id."""
    return group_lanes(read_samplesheet(path, base_dir, check_files))
