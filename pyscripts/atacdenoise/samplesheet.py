"""Check a pipeline samplesheet before Nextflow spends hours on it.

A samplesheet is a CSV with the columns ``sample, fastq_1, fastq_2, bam``; each
row is a FASTQ pair, a single FASTQ, or a BAM (see ``assets/schema_input.json``,
the same schema the pipeline documents). Checks, in order:

1. the header: a ``sample`` column, no unknown or repeated columns;
2. each row against the JSON schema (names, file suffixes, FASTQ xor BAM);
3. across rows: sample names are unique, FASTQ rows are all paired or all
   single-end, and every file exists (relative paths are resolved against
   ``base_dir``, like Nextflow resolves them against the launch folder).

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

from atacdenoise.errors import InputError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "assets" / "schema_input.json"
COLUMNS = ("sample", "fastq_1", "fastq_2", "bam")
FILE_COLUMNS = COLUMNS[1:]


@dataclass
class Sample:
    id: str
    fastq_1: str | None = None
    fastq_2: str | None = None
    bam: str | None = None

    @property
    def kind(self) -> str:
        """``paired``, ``single`` or ``bam``."""
        if self.bam:
            return "bam"
        return "paired" if self.fastq_2 else "single"


def load_schema(path: str | os.PathLike = SCHEMA_PATH) -> dict:
    with open(path) as fh:
        return json.load(fh)


def _is_remote(path: str) -> bool:
    """s3://, https://, gs:// ... are staged by Nextflow; they cannot be checked here."""
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path) is not None


def _schema_message(error: jsonschema.ValidationError) -> str:
    """The schema's own ``errorMessage`` for the failing keyword's subschema when it has one."""
    column = error.path[-1] if error.path and isinstance(error.path[-1], str) else None
    if error.validator in ("oneOf", "anyOf", "not", "pattern", "type") and "errorMessage" in error.schema:
        return error.schema["errorMessage"]
    if error.validator == "additionalProperties":
        return f"unknown column: {error.message}"
    if error.validator == "dependentRequired":
        return "fastq_2 given without fastq_1"
    return f"{column}: {error.message}" if column else error.message


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
        return ["line 1: empty file, expected the header 'sample,fastq_1,fastq_2,bam'"]
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
    first_line: dict[str, int] = {}
    fastq_layouts: dict[str, int] = {}
    for line, row in rows:
        if "__width__" in row:
            problems.append(f"line {line}: {row['__width__']}")
            continue
        errors = sorted(validator.iter_errors(row), key=lambda e: list(e.path))
        problems += [f"{_row_label(line, row)}: {msg}" for msg in dict.fromkeys(_schema_message(e) for e in errors)]
        if errors:
            continue
        sample = row["sample"]
        if sample in first_line:
            problems.append(f"{_row_label(line, row)}: duplicate sample id, already used on line {first_line[sample]}")
        first_line.setdefault(sample, line)
        if "fastq_1" in row:
            fastq_layouts.setdefault("paired" if "fastq_2" in row else "single", line)
        if check_files:
            problems += _file_problems(line, row, base_dir)
    if len(fastq_layouts) > 1:
        problems.append(f"mixed single-end (first on line {fastq_layouts['single']}) and paired-end (first on line "
                        f"{fastq_layouts['paired']}) FASTQ rows: run them as two samplesheets")
    return problems


def read_samplesheet(path: str | os.PathLike, base_dir: str | os.PathLike | None = None,
                     check_files: bool = True) -> list[Sample]:
    """The samples of a valid sheet (paths as written); InputError listing every problem otherwise."""
    problems = samplesheet_problems(path, base_dir, check_files)
    if problems:
        raise InputError(path, "; ".join(problems))
    _, rows = _read_rows(Path(path))
    return [Sample(row["sample"], row.get("fastq_1"), row.get("fastq_2"), row.get("bam")) for _, row in rows]
