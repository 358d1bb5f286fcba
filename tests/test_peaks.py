"""Peak calling with MACS3: simulated truth is recovered, real BAMs work, failures are clear."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyBigWig
import pytest

from atacdenoise.errors import InputError
from atacdenoise.io.chromsizes import read_chrom_sizes
from atacdenoise.io.narrowpeak import read_peaks
from atacdenoise.io.reads import ReadFilter
from atacdenoise.tracks import peaks as peaks_module
from atacdenoise.tracks.peaks import call_peaks
from atacdenoise.tracks.simulate import simulate
from conftest import blacklist_against

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GM12878 = DATA / "bam" / "GM12878_chr1_subset.hg19.bam"

needs_macs3 = pytest.mark.skipif(shutil.which("macs3") is None, reason="macs3 not installed (pip install macs3)")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = simulate(tmp_path_factory.mktemp("sim"), n_chroms=2, chrom_length=1_000_000, n_fragments=100_000,
                   frip=0.4, seed=11, fastq=False)
    return out | {"sizes": read_chrom_sizes(out["chrom_sizes"])}


@pytest.fixture(scope="module")
def called(sim, tmp_path_factory):
    prefix = tmp_path_factory.mktemp("peaks") / "sim"
    return call_peaks(sim["bam"], prefix, sim["sizes"])


def _overlaps(a: dict, b: dict) -> dict[str, np.ndarray]:
    """For each peak in ``a``, whether any peak in ``b`` overlaps it."""
    hits = {}
    for chrom, p in a.items():
        q = b.get(chrom)
        if q is None:
            hits[chrom] = np.zeros(len(p.starts), bool)
            continue
        # q sorted by start and non-overlapping: the candidate is the last q starting before p ends
        i = np.searchsorted(q.starts, p.ends, side="left") - 1
        hits[chrom] = (i >= 0) & (q.ends[np.maximum(i, 0)] > p.starts)
    return hits


def _n_peaks(path) -> int:
    return sum(len(p.starts) for p in read_peaks(path).values()) if Path(path).stat().st_size else 0


@needs_macs3
def test_recovers_simulated_peaks(sim, called):
    truth, found = read_peaks(sim["truth_peaks"]), read_peaks(called["narrowpeak"])
    recovered = _overlaps(truth, found)
    strength = np.concatenate([truth[c].signal for c in recovered])
    hit = np.concatenate(list(recovered.values()))
    strong = strength >= np.median(strength)
    assert hit[strong].mean() > 0.8
    precision = np.concatenate(list(_overlaps(found, truth).values())).mean()
    assert precision > 0.8
    assert "chrM" not in found  # the default filter drops it


@needs_macs3
def test_narrowpeak_is_what_genome_browsers_take(sim, called):
    """Scores within 0-1000 (MACS3's own reach tens of thousands), sorted by chromosome and start."""
    rows = [line.split("\t") for line in Path(called["narrowpeak"]).read_text().splitlines()]
    assert rows and all(0 <= int(r[4]) <= 1000 for r in rows)
    assert any(int(r[4]) == 1000 for r in rows) or max(float(r[8]) for r in rows) < 100  # capped, not rescaled
    keys = [(r[0], int(r[1])) for r in rows]
    order = {chrom: i for i, chrom in enumerate(dict.fromkeys(k[0] for k in keys))}
    assert keys == sorted(keys, key=lambda k: (order[k[0]], k[1])) and len(order) == len({k[0] for k in keys})


@needs_macs3
def test_peaks_bigbed_holds_the_narrowpeak(sim, called):
    from test_browser_outputs import assert_bigbed_matches

    assert called["bigbed"] == f"{Path(called['narrowpeak']).with_suffix('')}.bb"
    assert_bigbed_matches(Path(called["narrowpeak"]), sim["sizes"])


@needs_macs3
def test_signal_bigwig_follows_peaks(sim, called):
    found = read_peaks(called["narrowpeak"])
    with pyBigWig.open(called["signal"]) as bw:
        assert bw.chroms() == sim["sizes"]
        p = found["chr1"]
        inside = np.nanmean([bw.stats("chr1", int(s), int(e))[0] for s, e in zip(p.starts, p.ends)])
        assert inside > 3 * bw.stats("chr1", 0, sim["sizes"]["chr1"])[0]
        # SPMR: each insertion adds a 200 bp interval worth 1e6 / N, so the whole track integrates to 2e8
        total = sum(bw.stats(c, 0, n, type="mean")[0] * n for c, n in sim["sizes"].items() if c != "chrM")
        assert total == pytest.approx(200e6, rel=0.01)
    assert not [f for f in Path(called["narrowpeak"]).parent.iterdir() if ".tmp" in f.name]


@needs_macs3
def test_blacklist_drops_exactly_the_peaks_it_overlaps(sim, called, tmp_path):
    from atacdenoise.cli import main

    lines = Path(called["narrowpeak"]).read_text().splitlines(keepends=True)
    hit = blacklist_against(called["narrowpeak"], tmp_path / "blacklist.bed")
    prefix = tmp_path / "kept"
    assert main(["peaks", "--input", sim["bam"], "--out-prefix", str(prefix), "--blacklist",
                 str(tmp_path / "blacklist.bed")]) == 0
    assert len(lines) > 6 and hit
    assert Path(f"{prefix}.narrowPeak").read_text() == "".join(line for line in lines if line not in hit)


@needs_macs3
def test_cli_low_threshold_finds_at_least_as_many(sim, called, tmp_path):
    from atacdenoise.cli import main

    prefix = tmp_path / "low"
    assert main(["peaks", "--input", sim["bam"], "--out-prefix", str(prefix), "--low-threshold"]) == 0
    assert _n_peaks(f"{prefix}.narrowPeak") >= _n_peaks(called["narrowpeak"]) > 0
    assert Path(f"{prefix}.signal.bw").exists()


@needs_macs3
def test_bampe_mode_also_recovers_peaks(sim, tmp_path):
    out = call_peaks(sim["bam"], tmp_path / "pe", sim["sizes"], mode="bampe")
    truth, found = read_peaks(sim["truth_peaks"]), read_peaks(out["narrowpeak"])
    assert np.concatenate(list(_overlaps(truth, found).values())).mean() > 0.6


@needs_macs3
def test_no_reads_left_gives_empty_outputs(sim, tmp_path):
    out = call_peaks(sim["bam"], tmp_path / "none", sim["sizes"], read_filter=ReadFilter(min_mapq=255))
    assert Path(out["narrowpeak"]).read_text() == "" and "bigbed" not in out
    with pyBigWig.open(out["signal"]) as bw:
        assert bw.chroms() == sim["sizes"]


@needs_macs3
def test_real_gm12878_bam(tmp_path):
    if not GM12878.exists():
        pytest.skip(f"real data not found at {GM12878}")
    import pysam

    with pysam.AlignmentFile(str(GM12878)) as bam:
        sizes = dict(zip(bam.references, bam.lengths))
    out = call_peaks(GM12878, tmp_path / "gm", sizes)
    peaks = read_peaks(out["narrowpeak"])
    assert set(peaks) == {"chr1"} and len(peaks["chr1"].starts) > 0
    assert np.all(peaks["chr1"].ends <= sizes["chr1"]) and np.all(peaks["chr1"].signal > 0)
    with pyBigWig.open(out["signal"]) as bw:
        s = peaks["chr1"]
        assert bw.stats("chr1", int(s.starts[0]), int(s.ends[0]))[0] > 0
    low = call_peaks(GM12878, tmp_path / "gm_low", sizes, low_threshold=True)
    assert _n_peaks(low["narrowpeak"]) >= len(peaks["chr1"].starts)


def test_missing_macs3_is_a_clear_error(sim, tmp_path, monkeypatch):
    monkeypatch.setattr(peaks_module.shutil, "which", lambda name: None)
    with pytest.raises(InputError, match=r"macs3 not found on PATH; peak calling needs the \[peaks\] extra: pip install"):
        call_peaks(sim["bam"], tmp_path / "x", sim["sizes"])
    assert not list(tmp_path.iterdir())


@needs_macs3
def test_bad_arguments(sim, tmp_path):
    with pytest.raises(InputError, match="genome size"):
        call_peaks(sim["bam"], tmp_path / "x", sim["sizes"], genome_size="human")
    with pytest.raises(InputError, match="bampe"):
        call_peaks(sim["truth_accessibility"], tmp_path / "x", sim["sizes"], mode="bampe", fmt="insertions")
    with pytest.raises(InputError, match="bigWig"):
        call_peaks(sim["truth_accessibility"], tmp_path / "x", sim["sizes"])
    assert not list(tmp_path.iterdir())


@needs_macs3
def test_macs3_failure_shows_its_stderr():
    with pytest.raises(InputError, match="macs3 callpeak failed") as err:
        peaks_module._run_macs3(["macs3", "callpeak", "-t", "/nonexistent.bed", "-f", "BED", "-n", "x",
                                 "--outdir", "/nonexistent-dir/x"])
    assert len(str(err.value).splitlines()) > 1


def test_genome_size_argument():
    sizes = {"chr1": 1000, "chr2": 500}
    assert peaks_module._genome_size_arg(None, sizes) == "1500"
    assert peaks_module._genome_size_arg("hs", sizes) == "hs"
    assert peaks_module._genome_size_arg("2.7e9", sizes) == "2700000000"
    assert peaks_module._genome_size_arg(12345, sizes) == "12345"
    with pytest.raises(InputError):
        peaks_module._genome_size_arg("-5", sizes)
