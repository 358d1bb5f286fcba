"""``atacdenoise merge``: the output sets of per-group denoise runs gathered into the output set of one run.

Each group is ``atacdenoise denoise --chroms`` (or ``--group I/N``, see
:mod:`.scatter`) on the same input with the same model; the library depth is
measured on the whole input, so every group's values are those a whole run
gives. Merging then only copies, chromosome by chromosome:

- both bigWigs through the writer ``denoise`` uses (the same values and
  layout), read back one chunk of bins at a time;
- with ``denoise --bedgraph`` groups, their ``.bedGraph.gz`` files: written
  from the same chunks through the bedGraph writer ``denoise`` feeds beside
  each bigWig, so the lines are a whole run's (the bigWig holds the float32
  values exactly, and the writer's lines do not depend on the chunking);
- the narrowPeak lines unchanged but for the name, renumbered across the file
  as one run numbers them;
- the provenance of the first group, with the chromosomes of all groups and
  the files merged (``merged_from``).

Chromosomes come in the order a whole run writes them (the input's, from the
provenance). Memory is one chunk of one chromosome. Groups that overlap, or
that differ in model, contract, library depth, threshold, chromosome sizes or
output files (bedGraphs in some groups only: the line names the group's
missing file), are refused with one line before anything is written. The
merged files are one set, as ``denoise`` writes them: all or none.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from atacdenoise.denoise.run import browser_files, output_paths, track_writers
from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_set

TRACKS = ("denoised", "peakprob")
# What must agree between the groups of one merge: (name in messages, how to read it from a provenance).
SAME_RUN = (("model (ONNX sha256)", lambda p: p["onnx_sha256"]), ("contract", lambda p: p["contract"]),
            ("library depth", lambda p: p["library"]), ("peak threshold", lambda p: p["inputs"].get("threshold")),
            ("graph rewrites", lambda p: p.get("graph")),  # a rewritten graph's values differ by float rounding
            ("stored values", lambda p: p.get("stored_values", "exact")))


@dataclass
class GroupOutputs:
    """One group's output set: its files (those it has) and its provenance."""

    prefix: str
    paths: dict[str, Path]
    provenance: dict

    @property
    def chroms(self) -> list[str]:
        return list(self.provenance["inputs"]["chroms"])


def merge_outputs(prefixes: list[str | os.PathLike], out_prefix: str | os.PathLike) -> dict[str, str]:
    """Merge the output sets of ``prefixes`` (each ``denoise --out-prefix``) into ``out_prefix``; return its paths."""
    if not prefixes:
        raise InputError(None, "no output sets to merge")
    groups = [read_group(prefix) for prefix in prefixes]
    check_same_run(groups)
    owner = chromosome_owners(groups)
    order = merged_order(groups, owner)
    sizes = merged_header(groups, order)
    bin_size = int(groups[0].provenance["contract"]["bin_size"])
    paths = output_paths(out_prefix, bedgraph=True)
    wanted = {kind: paths[kind] for kind in groups[0].paths}  # the files every group has (check_same_run)
    with atomic_set() as temporary, ExitStack() as stack:  # the merged files, or none of them (as denoise writes)
        writers = {kind: track_writers(stack, temporary(wanted[kind]), sizes, bin_size,
                                       _temporary_or_none(temporary, wanted.get(f"{kind}_bedgraph")))
                   for kind in TRACKS if kind in wanted}
        for chrom in order:
            for kind, writer in writers.items():
                copy_chromosome(owner[chrom].paths[kind], chrom, bin_size, writer)
        if "peaks" in wanted:
            merge_peaks(temporary(wanted["peaks"]), groups, order, owner)
        write_merged_provenance(temporary(wanted["provenance"]), groups, order)
    outputs = {kind: str(path) for kind, path in wanted.items()}
    inputs = groups[0].provenance["inputs"]  # the input and genome a whole run's IGV session shows, when at hand
    return outputs | browser_files(outputs, sizes, inputs.get("input"), inputs.get("format"), inputs.get("fasta"))


def _temporary_or_none(temporary, path: Path | None) -> Path | None:
    return None if path is None else temporary(path)


def read_group(prefix) -> GroupOutputs:
    """A group's files and provenance; refuses a prefix that is not a denoise output set."""
    paths = output_paths(prefix, bedgraph=True)
    provenance_path = paths["provenance"]
    if not provenance_path.is_file():
        raise InputError(provenance_path, "missing: each PREFIX to merge is the --out-prefix of 'atacdenoise denoise'")
    try:
        provenance = json.loads(provenance_path.read_text())
        provenance["inputs"]["chroms"], provenance["contract"]["bin_size"], provenance["onnx_sha256"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputError(provenance_path, f"not the provenance of 'atacdenoise denoise' ({type(err).__name__}: "
                                          f"{err})") from None
    present = {kind: path for kind, path in paths.items() if path.is_file()}
    return GroupOutputs(os.fspath(prefix), present, provenance)


def check_same_run(groups: list[GroupOutputs]) -> None:
    """Every group: the same model, contract, library depth, threshold, output files and chromosome sizes."""
    first = groups[0]
    for group in groups[1:]:
        for what, read in SAME_RUN:
            if read(group.provenance) != read(first.provenance):
                raise InputError(group.paths["provenance"], f"{what} differs from {first.paths['provenance']}"
                                 f"{_difference(read(first.provenance), read(group.provenance))}: the groups of "
                                 f"one merge come from one input and one model")
    check_same_files(groups)
    headers = {group.prefix: _bigwig_sizes(group) for group in groups}
    for group in groups[1:]:
        if headers[group.prefix] != headers[first.prefix]:
            raise InputError(group.prefix, f"chromosome sizes of its bigWigs differ from {first.prefix}'s")


def check_same_files(groups: list[GroupOutputs]) -> None:
    """Every group has the files any group has (one of them without its bedGraphs was run without --bedgraph)."""
    for kind in sorted({kind for group in groups for kind in group.paths}):
        having = next(group for group in groups if kind in group.paths)
        lacking = next((group for group in groups if kind not in group.paths), None)
        if lacking is not None:
            raise InputError(output_paths(lacking.prefix, bedgraph=True)[kind],
                             f"missing, but {having.paths[kind]} is there: the groups of one merge are written with "
                             f"the same options (denoise --bedgraph for the .bedGraph.gz files, no --no-peakprob "
                             f"for the peak probability)")


def _difference(a, b) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        return f" ({', '.join(f'{k}: {a.get(k)!r} vs {b.get(k)!r}' for k in keys[:3])})"
    return f" ({a!r} vs {b!r})"


def _bigwig_sizes(group: GroupOutputs) -> dict[str, int]:
    from atacdenoise.io.bigwig import bigwig_chrom_sizes

    track = next((group.paths[kind] for kind in TRACKS if kind in group.paths), None)
    return {} if track is None else bigwig_chrom_sizes(track)


def chromosome_owners(groups: list[GroupOutputs]) -> dict[str, GroupOutputs]:
    """Which group denoised each chromosome; a chromosome in two groups is refused."""
    owner: dict[str, GroupOutputs] = {}
    for group in groups:
        for chrom in group.chroms:
            if chrom in owner:
                raise InputError(group.paths["provenance"], f"chromosome {chrom} was also denoised in "
                                                            f"{owner[chrom].prefix}: groups must not overlap")
            owner[chrom] = group
    return owner


def merged_order(groups: list[GroupOutputs], owner: dict[str, GroupOutputs]) -> list[str]:
    """The groups' chromosomes in the order a whole run writes them (the input's)."""
    input_order = groups[0].provenance["inputs"].get("input_chroms") or []
    listed = [chrom for chrom in input_order if chrom in owner]
    return listed + [chrom for group in groups for chrom in group.chroms if chrom not in listed]


def merged_header(groups: list[GroupOutputs], order: list[str]) -> dict[str, int]:
    """bigWig header as a whole run writes it: the denoised chromosomes first, then the others (empty)."""
    sizes = _bigwig_sizes(groups[0])
    return {**{chrom: sizes[chrom] for chrom in order}, **sizes}


def copy_chromosome(source: Path, chrom: str, bin_size: int, writer) -> None:
    from atacdenoise.io.bigwig import binned_chunks

    for first_bin, values in binned_chunks(source, chrom, bin_size):
        writer.add(chrom, first_bin, values)


def merge_peaks(tmp: Path, groups: list[GroupOutputs], order: list[str], owner: dict[str, GroupOutputs]) -> None:
    """The groups' narrowPeak lines in chromosome ``order``, names renumbered across the file, streamed."""
    readers = {group.prefix: _PeakLines(group.paths["peaks"]) for group in groups}
    try:
        with open(tmp, "w") as out:
            index = 0
            for chrom in order:
                for fields in readers[owner[chrom].prefix].take(chrom):
                    fields[3] = f"{fields[3].rsplit('_', 1)[0]}_{index}"
                    out.write("\t".join(fields))
                    index += 1
        for reader in readers.values():
            reader.check_finished()
    finally:
        for reader in readers.values():
            reader.close()


class _PeakLines:
    """A group's narrowPeak read line by line, a chromosome's lines at a time (they come together)."""

    def __init__(self, path: Path):
        self.path, self._fh = path, open(path)
        self._next = self._fh.readline()

    def take(self, chrom: str):
        while self._next and self._next.split("\t", 1)[0] == chrom:
            fields = self._next.split("\t")
            if len(fields) != 10:
                raise InputError(self.path, f"not a narrowPeak line (10 columns): {self._next.rstrip()!r}")
            yield fields
            self._next = self._fh.readline()

    def check_finished(self) -> None:
        if self._next:
            raise InputError(self.path, f"peaks on {self._next.split(chr(9), 1)[0]}, which its provenance does not "
                                        f"list, or out of chromosome order")

    def close(self) -> None:
        self._fh.close()


def write_merged_provenance(tmp: Path, groups: list[GroupOutputs], order: list[str]) -> None:
    record = dict(groups[0].provenance)
    record["inputs"] = {**record["inputs"], "chroms": order}
    record["merged_from"] = [os.fspath(group.paths["provenance"]) for group in groups]
    if all("windows" in group.provenance for group in groups):  # each group counted its own windows
        record["windows"] = {key: sum(group.provenance["windows"][key] for group in groups)
                             for key in record["windows"]}
    Path(tmp).write_text(json.dumps(record, indent=2) + "\n")
