"""Run the pipeline's steps in order without Nextflow.

Each step calls the same ``bin/`` executable the Nextflow process calls, with the
same arguments, so a local run and a Nextflow run do the same work. The
``test`` profile first simulates a small data set and uses it as the deep sample.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from atacdenoise.errors import InputError

BIN_DIR = Path(__file__).resolve().parents[2] / "bin"


@dataclass
class Step:
    name: str          # the Nextflow process it mirrors
    argv: list[str]    # bin/ executable and its arguments
    outputs: list[str]  # files that must exist afterwards


def _bin(name: str) -> str:
    """Prefer the repository's bin/ (same files as Nextflow uses), else PATH."""
    local = BIN_DIR / name
    return str(local) if local.exists() else name


def demo_steps(outdir: Path, seed: int = 0, fraction: float = 0.1) -> list[Step]:
    """The steps of the ``test`` profile on simulated data."""
    sim, frac = outdir / "simulate", f"{fraction:g}"
    bam, sizes = sim / "sim.bam", sim / "chrom.sizes"
    shallow = outdir / "subsample" / f"sim.sub{frac}.bam"
    steps = [
        Step("SIMULATE", [_bin("atac-simulate"), "--out-dir", sim, "--seed", seed], [bam, sizes]),
        Step("FILTER_SHIFT", [_bin("atac-insertions"), "--input", bam, "--output", outdir / "insertions" / "sim.deep.bed.gz"],
             [outdir / "insertions" / "sim.deep.bed.gz"]),
        Step("SUBSAMPLE", [_bin("atac-subsample"), "--input", bam, "--fraction", frac, "--seed", seed, "--output", shallow],
             [shallow]),
    ]
    for depth, reads in (("deep", bam), ("shallow", shallow)):
        peaks = outdir / "peaks" / f"sim.{depth}"
        steps.append(Step("CALL_PEAKS", [_bin("atac-peaks"), "--input", reads, "--output-prefix", peaks, "--chrom-sizes", sizes],
                          [f"{peaks}.narrowPeak"]))
        cov = outdir / "bin" / f"sim.{depth}.coverage"
        steps.append(Step("BIN", [_bin("atac-bin"), "--input", reads, "--chrom-sizes", sizes, "--output-prefix", cov,
                                  "--normalize"], [f"{cov}.bw", f"{cov}.tracks"]))
        sig = outdir / "bin" / f"sim.{depth}.peak-signal"
        steps.append(Step("BIN", [_bin("atac-bin"), "--input", f"{peaks}.narrowPeak", "--chrom-sizes", sizes,
                                  "--representation", "peak-signal", "--output-prefix", sig], [f"{sig}.bw", f"{sig}.tracks"]))
    return steps


def run_steps(steps: list[Step], log_dir: Path) -> None:
    """Run steps one by one, showing progress; stop at the first failure with its log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    for i, step in enumerate(steps, start=1):
        argv = [str(a) for a in step.argv]
        log = log_dir / f"{i:02d}_{step.name.lower()}.log"
        print(f"[{i}/{len(steps)}] {step.name}: {shlex.join(argv[:1] + argv[1:6])} ...", file=sys.stderr, flush=True)
        t0 = time.time()
        with open(log, "w") as fh:
            fh.write(shlex.join(argv) + "\n")
            fh.flush()
            result = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
            raise InputError(log, f"step {step.name} failed (exit {result.returncode}): {tail[0]}")
        missing = [str(p) for p in step.outputs if not os.path.exists(p)]
        if missing:
            raise InputError(log, f"step {step.name} did not write {', '.join(missing)}")
        print(f"      done in {time.time() - t0:.1f} s", file=sys.stderr, flush=True)


def run_pipeline(outdir: str | os.PathLike, profile: str = "test", samplesheet: str | None = None, seed: int = 0) -> Path:
    outdir = Path(outdir)
    if profile != "test" or samplesheet:
        raise InputError(samplesheet, "only the 'test' profile (simulated data) is available in the local runner so far")
    run_steps(demo_steps(outdir, seed=seed), outdir / "logs")
    return outdir
