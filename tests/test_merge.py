"""Scatter and gather (issue 20): a sample denoised as chromosome groups and merged is the whole run, exactly.

The bundled counts-only model denoises a small synthetic library of four
chromosomes (one ending inside a bin) plus one without insertions, written in
an order other than the chrom sizes'. The groups are denoised through the CLI
(``denoise --group I/N``) and gathered with ``atacdenoise merge``: both
bigWigs hold the same intervals and values as one run's, the narrowPeak is the
same bytes, and the provenance is the run's but for the files merged. Groups
run with ``--bedgraph`` merge into the whole run's bedGraphs, line for line.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyBigWig
import pytest

from atacdenoise.cli import main
from atacdenoise.denoise import BUNDLED_COUNTS_MODEL, denoise
from atacdenoise.denoise.merge import merge_outputs
from atacdenoise.denoise.run import output_paths
from atacdenoise.denoise.scatter import chrom_groups, group_chroms
from atacdenoise.errors import InputError
from atacdenoise.io.chromsizes import write_chrom_sizes

# chrB ends inside a 25 bp bin; chrE has no insertions (a whole run leaves it empty).
SIZES = {"chrA": 420_000, "chrB": 195_010, "chrC": 260_000, "chrD": 130_000, "chrE": 40_000}
INPUT_ORDER = ["chrC", "chrA", "chrD", "chrB"]


def write_library(path: Path, seed: int = 0) -> None:
    """Uniform background plus dense sites per chromosome, in INPUT_ORDER (a test fixture, not real data)."""
    rng = np.random.default_rng(seed)
    with gzip.open(path, "wt") as out:
        for chrom in INPUT_ORDER:
            length = SIZES[chrom]
            sites = rng.integers(2_000, length - 2_000, length // 8_000)
            pos = np.concatenate([rng.integers(0, length, length // 100),
                                  (sites[:, None] + rng.integers(-80, 80, (len(sites), 120))).ravel()])
            out.write("".join(f"{chrom}\t{p}\t{p + 1}\t.\t0\t+\n" for p in np.sort(pos)))


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("merge")
    write_library(root / "ins.bed.gz")
    write_chrom_sizes(root / "chrom.sizes", SIZES)
    whole = denoise(root / "ins.bed.gz", BUNDLED_COUNTS_MODEL, SIZES, root / "whole" / "s", progress=False)
    return {"root": root, "input": root / "ins.bed.gz", "sizes": root / "chrom.sizes", "whole": whole}


def cli_denoise(library: dict, prefix: Path, *extra: str) -> int:
    return main(["denoise", "--input", str(library["input"]), "--model", str(BUNDLED_COUNTS_MODEL), "--chrom-sizes",
                 str(library["sizes"]), "--out-prefix", str(prefix), "--progress", "never", "--quiet", *extra])


def intervals(path, chrom: str):
    with pyBigWig.open(str(path)) as bw:
        return bw.intervals(chrom)


def assert_same_outputs(merged: dict, whole: dict) -> None:
    for kind in ("denoised", "peakprob"):
        with pyBigWig.open(merged[kind]) as a, pyBigWig.open(whole[kind]) as b:
            assert list(a.chroms().items()) == list(b.chroms().items())  # the header, in the same order
        for chrom in SIZES:
            assert intervals(merged[kind], chrom) == intervals(whole[kind], chrom), (kind, chrom)
    assert Path(merged["peaks"]).read_bytes() == Path(whole["peaks"]).read_bytes()
    merged_record = json.loads(Path(merged["provenance"]).read_text())
    assert merged_record.pop("merged_from")
    assert merged_record == json.loads(Path(whole["provenance"]).read_text())
    prefix = merged["provenance"].removesuffix(".provenance.json")
    with pyBigWig.open(f"{prefix}.peaks.bb") as a, pyBigWig.open(whole["peaks_bigbed"]) as b:  # browser files too
        assert all(a.entries(c, 0, n) == b.entries(c, 0, n) for c, n in b.chroms().items())
    assert Path(f"{prefix}.igv.xml").read_text().count("<Resource ") == 3  # denoised, peak probability, peaks


@pytest.mark.parametrize("n_groups", [2, 3, 6])
def test_groups_merged_equal_one_whole_run(library, n_groups, tmp_path):
    """3 groups: one holds chrE (no insertions); 6 groups of 5 chromosomes: the last task has none at all."""
    prefixes = [tmp_path / f"part{i}" for i in range(1, n_groups + 1)]
    for i, prefix in enumerate(prefixes, start=1):
        assert cli_denoise(library, prefix, "--group", f"{i}/{n_groups}") == 0
    assert main(["merge", *map(str, prefixes), "--out-prefix", str(tmp_path / "merged"), "--quiet"]) == 0
    whole = library["whole"]
    with pyBigWig.open(whole["denoised"]) as bw:
        assert bw.stats("chrA", type="max")[0] > 0 and not bw.intervals("chrE")  # something to compare
    assert Path(whole["peaks"]).read_text().count("\n") > 10
    assert_same_outputs({k: str(v) for k, v in output_paths(tmp_path / "merged").items()}, whole)


def test_groups_without_the_peak_probability_merge_into_a_whole_run_without_it(library, halves, tmp_path, capsys):
    whole = tmp_path / "whole"
    assert cli_denoise(library, whole, "--no-peakprob") == 0
    parts = [tmp_path / "part1", tmp_path / "part2"]
    for i, prefix in enumerate(parts, start=1):
        assert cli_denoise(library, prefix, "--group", f"{i}/2", "--no-peakprob") == 0
    merged = tmp_path / "merged"
    assert main(["merge", *map(str, parts), "--out-prefix", str(merged), "--quiet"]) == 0
    assert not output_paths(merged)["peakprob"].exists() and not output_paths(whole)["peakprob"].exists()
    for chrom in SIZES:  # the denoised track and peaks of the run with it, and of the whole run without it
        assert intervals(output_paths(merged)["denoised"], chrom) == intervals(library["whole"]["denoised"], chrom)
    assert output_paths(merged)["peaks"].read_bytes() == Path(library["whole"]["peaks"]).read_bytes()
    assert output_paths(whole)["peaks"].read_bytes() == Path(library["whole"]["peaks"]).read_bytes()
    assert "peakprob" not in Path(f"{merged}.igv.xml").read_text()
    out = tmp_path / "mixed"
    assert_refused(["merge", str(halves[0]), str(parts[1]), "--out-prefix", str(out)], out, capsys,
                   "part2.peakprob.bw", "missing", "--no-peakprob")


def test_chrom_groups_are_balanced_longest_first():
    sizes = {"chr1": 249, "chr2": 243, "chr3": 198, "chrM": 1, "chr21": 46, "chrX": 156}
    assert chrom_groups(sizes, 3) == [["chr1", "chrM"], ["chr2", "chr21"], ["chr3", "chrX"]]
    assert chrom_groups(sizes, 1) == [list(sizes)]
    assert chrom_groups({"a": 5, "b": 5}, 4) == [["a"], ["b"]]  # never an empty group
    assert [group_chroms({"a": 5, "b": 5}, g) for g in ("1/4", "2/4", "4/4")] == [["a"], ["b"], []]
    groups = chrom_groups({f"c{i}": 1000 - 7 * i for i in range(40)}, 4)
    totals = [sum(1000 - 7 * int(c[1:]) for c in group) for group in groups]
    assert sorted(c for group in groups for c in group) == sorted(f"c{i}" for i in range(40))
    assert max(totals) - min(totals) <= 1000  # within one chromosome of each other
    for bad in ("0/2", "3/2", "2", "a/b"):
        with pytest.raises(InputError, match="I/N"):
            group_chroms(sizes, bad)


@pytest.fixture(scope="module")
def halves(library) -> list[Path]:
    root = library["root"] / "halves"
    prefixes = [root / "part1", root / "part2"]
    for i, prefix in enumerate(prefixes, start=1):
        assert cli_denoise(library, prefix, "--group", f"{i}/2") == 0
    return prefixes


def assert_refused(argv: list[str], out_prefix: Path, capsys, *words: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and all(word in lines[0] for word in words), lines
    assert not list(out_prefix.parent.glob(f"{out_prefix.name}*")), "nothing may be written"


def test_overlapping_groups_are_refused(library, halves, tmp_path, capsys):
    out = tmp_path / "merged"
    whole_prefix = str(library["whole"]["provenance"]).removesuffix(".provenance.json")
    assert_refused(["merge", str(halves[0]), whole_prefix, "--out-prefix", str(out)], out, capsys,
                   "also denoised in", "must not overlap")


def test_groups_of_another_model_or_library_are_refused(library, halves, tmp_path, capsys):
    other_model = tmp_path / "other" / "part2"
    assert cli_denoise(library, other_model, "--group", "2/2", "--threshold", "0.4") == 0
    out = tmp_path / "merged"
    assert_refused(["merge", str(halves[0]), str(other_model), "--out-prefix", str(out)], out, capsys,
                   "peak threshold differs")
    other_depth = tmp_path / "depth" / "part2"
    assert cli_denoise(library, other_depth, "--group", "2/2", "--library-size", "1e6") == 0
    assert_refused(["merge", str(halves[0]), str(other_depth), "--out-prefix", str(out)], out, capsys,
                   "library depth differs")
    exact = tmp_path / "exact" / "part2"  # the values as the model gave them, not rounded as the first half's
    assert cli_denoise(library, exact, "--group", "2/2", "--exact-values") == 0
    assert_refused(["merge", str(halves[0]), str(exact), "--out-prefix", str(out)], out, capsys,
                   "stored values differs")
    # Another model: the provenance of a different ONNX file (its sha256 and contract).
    record = json.loads(output_paths(halves[1])["provenance"].read_text())
    other = tmp_path / "model" / "part2"
    other.parent.mkdir()
    for kind in ("denoised", "peakprob", "peaks"):
        output_paths(other)[kind].symlink_to(output_paths(halves[1])[kind])
    output_paths(other)["provenance"].write_text(json.dumps({**record, "onnx_sha256": "0" * 64}))
    assert_refused(["merge", str(halves[0]), str(other), "--out-prefix", str(out)], out, capsys,
                   "model (ONNX sha256) differs")
    # The graph run as exported (denoise(fast_graph=False)): values differ by float rounding.
    output_paths(other)["provenance"].write_text(json.dumps(
        {**record, "graph": {"rewrites": [], "bins_predicted_per_window": 1024}}))
    assert_refused(["merge", str(halves[0]), str(other), "--out-prefix", str(out)], out, capsys,
                   "graph rewrites differs")
    assert_refused(["merge", str(halves[0]), str(tmp_path / "absent"), "--out-prefix", str(out)], out, capsys,
                   "absent.provenance.json", "missing")


def read_in_small_chunks(monkeypatch, chunk_bins: int = 1_000) -> list[int]:
    """From now on the bigWigs are read back ``chunk_bins`` bins at a time; returns the list of chunk sizes read."""
    from atacdenoise.io import bigwig

    chunk_sizes = []
    original = bigwig.binned_chunks

    def small_chunks(path, chrom, bin_size, **_):
        for first, values in original(path, chrom, bin_size, chunk_bins=chunk_bins):
            chunk_sizes.append(len(values))
            yield first, values

    monkeypatch.setattr(bigwig, "binned_chunks", small_chunks)
    return chunk_sizes


def test_merge_reads_chromosome_by_chromosome_in_chunks(halves, tmp_path, monkeypatch):
    """Memory bounded by a chunk: the bigWigs are read back in chunks of bins, never a chromosome at once."""
    chunk_sizes = read_in_small_chunks(monkeypatch)
    merged = merge_outputs(halves, tmp_path / "small")
    assert max(chunk_sizes) == 1_000 and len(chunk_sizes) > 2 * len(SIZES)
    monkeypatch.undo()
    reference = merge_outputs(halves, tmp_path / "reference")
    for kind in ("denoised", "peakprob"):
        for chrom in SIZES:
            assert intervals(merged[kind], chrom) == intervals(reference[kind], chrom)


def test_chroms_not_in_the_chrom_sizes_are_refused(library, tmp_path, capsys):
    """A chromosome without insertions is left empty (a group may hold only such); a name not in the chrom sizes
    is a typo, refused with one line."""
    out = tmp_path / "typo"
    assert_refused(["denoise", "--input", str(library["input"]), "--model", str(BUNDLED_COUNTS_MODEL),
                    "--chrom-sizes", str(library["sizes"]), "--chroms", "chrA,chrZ", "--out-prefix", str(out)],
                   out, capsys, "--chroms chrZ: not in the chrom sizes")
    assert cli_denoise(library, tmp_path / "empty", "--chroms", "chrE") == 0
    with pyBigWig.open(str(output_paths(tmp_path / "empty")["denoised"])) as bw:
        assert list(bw.chroms()) == list(SIZES) and all(not bw.intervals(chrom) for chrom in SIZES)
    assert output_paths(tmp_path / "empty")["peaks"].read_text() == ""


def test_a_merge_that_fails_midway_leaves_the_earlier_merged_set_as_it_was(halves, tmp_path, monkeypatch):
    """The merged files are one set, as denoise writes them: a failure after the bigWigs and peaks are written
    leaves the earlier merge byte for byte, and no temporary."""
    from atacdenoise.denoise import merge

    out = tmp_path / "merged"
    merge_outputs(halves, out)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {"merged.denoised.bw", "merged.peaks.narrowPeak", "merged.provenance.json"} <= set(before)

    def fail(*args, **kwargs):
        assert list(tmp_path.glob(".merged.denoised.bw.*")) and list(tmp_path.glob(".merged.peaks.narrowPeak.*"))
        raise OSError("injected I/O error")

    monkeypatch.setattr(merge, "write_merged_provenance", fail)
    with pytest.raises(OSError, match="injected"):
        merge_outputs(halves, out)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.fixture(scope="module")
def bedgraph_runs(library) -> dict:
    """A whole run and two groups, all with --bedgraph."""
    root = library["root"] / "bedgraph"
    whole = denoise(library["input"], BUNDLED_COUNTS_MODEL, SIZES, root / "whole" / "s", progress=False,
                    bedgraph=True)
    halves = [root / "part1", root / "part2"]
    for i, prefix in enumerate(halves, start=1):
        assert cli_denoise(library, prefix, "--group", f"{i}/2", "--bedgraph") == 0
    return {"whole": whole, "halves": halves}


def test_bedgraphs_of_groups_merged_equal_one_whole_run(bedgraph_runs, tmp_path, monkeypatch):
    """Read back in chunks of 1000 bins (runs of equal bins cross them), the merged bedGraphs are a whole run's."""
    chunk_sizes = read_in_small_chunks(monkeypatch)
    out = tmp_path / "merged"
    assert main(["merge", *map(str, bedgraph_runs["halves"]), "--out-prefix", str(out), "--quiet"]) == 0
    assert chunk_sizes and max(chunk_sizes) == 1_000
    merged, whole = output_paths(out, bedgraph=True), bedgraph_runs["whole"]
    for kind in ("denoised_bedgraph", "peakprob_bedgraph"):
        lines = gzip.decompress(Path(whole[kind]).read_bytes()).decode().splitlines()
        assert {line.split("\t", 1)[0] for line in lines} == set(INPUT_ORDER), kind  # something to compare
        assert gzip.decompress(merged[kind].read_bytes()).decode().splitlines() == lines, kind
    assert_same_outputs({k: str(v) for k, v in merged.items()}, whole)


def test_bedgraphs_in_some_groups_only_are_refused(halves, bedgraph_runs, tmp_path, capsys):
    """One line naming the group's missing bedGraph, whichever group lacks it; nothing written."""
    out = tmp_path / "merged"
    with_bedgraph, without = bedgraph_runs["halves"][0], halves[1]
    for prefixes in ([with_bedgraph, without], [without, with_bedgraph]):
        assert_refused(["merge", *map(str, prefixes), "--out-prefix", str(out)], out, capsys,
                       f"{without}.denoised.bedGraph.gz", "missing", f"{with_bedgraph}.denoised.bedGraph.gz",
                       "--bedgraph")
