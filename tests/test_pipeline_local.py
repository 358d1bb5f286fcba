"""The README demo: the local runner runs every step on simulated data through bin/."""

from __future__ import annotations

import numpy as np
import pyBigWig

import pytest

from atacdenoise.cli import main
from atacdenoise.errors import InputError
from atacdenoise.pipeline import Step, _bin, run_steps
from atacdenoise.io.narrowpeak import read_peaks
from atacdenoise.tracks.store import open_store


def test_local_pipeline_test_profile(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["pipeline", "--profile", "test", "--outdir", str(out)]) == 0
    progress = capsys.readouterr().err
    assert "[1/" in progress and "SIMULATE" in progress and "pipeline finished" in progress

    deep = open_store(out / "bin/sim.deep.coverage.tracks")
    shallow = open_store(out / "bin/sim.shallow.coverage.tracks")
    assert deep.bin_size == shallow.bin_size == 25
    chrom = deep.chroms[0]
    # both are normalised per million insertions, so the shallow twin keeps the scale but not the detail
    assert np.isclose(deep.array(chrom).sum(), shallow.array(chrom).sum(), rtol=0.2)
    assert np.corrcoef(deep.array(chrom), shallow.array(chrom))[0, 1] > 0.5
    n_deep = sum(len(p.starts) for p in read_peaks(out / "peaks/sim.deep.narrowPeak").values())
    n_shallow = sum(len(p.starts) for p in read_peaks(out / "peaks/sim.shallow.narrowPeak").values())
    assert n_deep > n_shallow  # a tenth of the reads finds fewer peaks
    with pyBigWig.open(str(out / "bin/sim.deep.peak-signal.bw")) as bw:
        assert bw.chroms(chrom) == deep.chrom_sizes[chrom]


def test_a_failing_step_stops_the_run_with_its_log(tmp_path):
    missing = tmp_path / "missing.bam"
    steps = [Step("BIN", [_bin("atac-bin"), "--input", missing, "--output-prefix", tmp_path / "x"], [tmp_path / "x.bw"]),
             Step("NEVER", ["false"], [])]
    with pytest.raises(InputError, match=r"step BIN failed \(exit 2\).*missing.bam") as err:
        run_steps(steps, tmp_path / "logs")
    assert "01_bin.log" in str(err.value)
    assert not (tmp_path / "logs" / "02_never.log").exists()
