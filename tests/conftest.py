"""Shared fixtures: where the real data lives, and one simulated data set per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: the real data is never committed."""
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"real data not found at {SHARED_DATA} (see README: Data)")
    return SHARED_DATA


# Windows of the small simulated pairs below: the full model contract at a size CPU tests train in seconds.
SMALL_WINDOW, SMALL_TARGET = 256, 64


@pytest.fixture(scope="session")
def small_training_pairs(tmp_path_factory) -> tuple[dict, dict]:
    """``(train, val)`` pairs (``search.data.make_pairs``) of a small simulated genome: 400 sampled windows
    on chr1, chr2 tiled, the BAM thinned to 30 %, targets the true accessibility, labels the true peaks."""
    from atacdenoise.io.chromsizes import read_chrom_sizes
    from atacdenoise.search.data import make_pairs
    from atacdenoise.tracks.simulate import simulate
    from atacdenoise.tracks.windows import WindowSpec

    files = simulate(tmp_path_factory.mktemp("small_pairs"), n_chroms=2, chrom_length=400_000, n_fragments=40_000,
                     seed=3, fastq=False)
    sizes = read_chrom_sizes(files["chrom_sizes"])
    sources = (files["bam"], files["truth_accessibility"], files["truth_peaks"])
    common = dict(depths=(0.3,), spec=WindowSpec(SMALL_WINDOW, SMALL_TARGET), seed=0)
    return (make_pairs(*sources, sizes, ["chr1"], n_windows=400, **common),
            make_pairs(*sources, sizes, ["chr2"], n_windows=None, **common))


def run_subcommand(add_parser, argv: list) -> None:
    """Run one subcommand the way ``cli.main`` does, through the parser ``add_parser(subparsers)`` builds
    (log lines on stderr included), without the rest of the command line."""
    import argparse

    from atacdenoise.cli_args import setup_logging

    parser = argparse.ArgumentParser(prog="atacdenoise")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    setup_logging()
    args.func(args)


def blacklist_against(narrowpeak: Path, path: Path) -> set[str]:
    """Write a blacklist that touches every third peak by one base (and abuts others without overlapping them);
    return the lines of the peaks it must remove."""
    lines = Path(narrowpeak).read_text().splitlines(keepends=True)
    hit, regions = set(), []
    for i, line in enumerate(lines):
        chrom, start, end = line.split("\t")[:3]
        if i % 3 == 0:
            hit.add(line)
            regions.append(f"{chrom}\t{int(end) - 1}\t{int(end) + 40}\n")   # the peak's last base
        elif int(start) > 0:
            regions.append(f"{chrom}\t{max(int(start) - 30, 0)}\t{start}\n")  # ends where the peak starts
    path.write_text("".join(regions))
    return hit
