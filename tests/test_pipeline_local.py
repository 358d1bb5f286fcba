"""The local runner: every step of main.nf, through bin/, on a small simulated data set.

This is the README demo at a smaller size: simulate -> align -> peaks -> bin ->
subsample -> windows -> NASH search -> ONNX export -> register and promote in a
real local MLflow server -> denoise with models:/NAME@champion -> report.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from atacdenoise.errors import InputError
from atacdenoise.io.bigwig import read_bigwig
from atacdenoise.io.narrowpeak import read_peaks
from atacdenoise.pipeline import DemoSettings, Step, _bin, run_pipeline, run_steps

SMALL = DemoSettings(chrom_length=500_000, fragments=50_000, n_train=128, depths="0.1,1.0",
                     search=("--space", "dilated1d", "--iterations", "1", "--children", "1", "--epochs", "1",
                             "--initial-draws", "1", "--initial-epochs", "2", "--loss", "log-mse", "--device", "cpu"))


@pytest.mark.slow
def test_local_pipeline_trains_registers_and_denoises(tmp_path, capsys):
    out = run_pipeline(tmp_path / "demo", settings=SMALL)
    progress = capsys.readouterr().err
    for step in ("SIMULATE", "ALIGN", "NASH_SEARCH", "REGISTER_MODEL", "DENOISE"):
        assert f"] {step}:" in progress

    history = [json.loads(line) for line in (out / "nash_search" / "history.jsonl").read_text().splitlines()]
    assert len(history) == 1 + 2  # one random draw, then parent + one child
    registered = json.loads((out / "logs" / "12_register_model.log").read_text().splitlines()[-1])
    assert registered["name"] == "atac-denoiser" and registered["version"] == "1"

    prefix = out / "denoise" / "sim.shallow"
    denoised = read_bigwig(f"{prefix}.denoised.bw", "chr2")
    probability = read_bigwig(f"{prefix}.peakprob.bw", "chr2")
    assert denoised.size == 500_000 and np.isfinite(denoised).all() and denoised.max() > 0
    assert 0 <= probability.min() and probability.max() <= 1
    read_peaks(f"{prefix}.peaks.narrowPeak")  # parses (it may hold no peak after so short a search)


def test_a_failing_step_stops_the_run_with_its_log(tmp_path):
    missing = tmp_path / "missing.bam"
    steps = [Step("BIN", [_bin("atac-bin"), "--input", missing, "--output-prefix", tmp_path / "x"], [tmp_path / "x.bw"]),
             Step("NEVER", ["false"], [])]
    with pytest.raises(InputError, match=r"step BIN failed \(exit 2\).*missing.bam") as err:
        run_steps(steps, tmp_path / "logs")
    assert "01_bin.log" in str(err.value)
    assert not (tmp_path / "logs" / "02_never.log").exists()


def test_only_the_test_profile_runs_locally(tmp_path):
    with pytest.raises(InputError, match="test"):
        run_pipeline(tmp_path, samplesheet="deep.csv")
