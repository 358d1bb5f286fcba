"""A wheel, installed for real (not editable), denoises with the bundled model it carries.

The models' home is the repository's registry/models/, outside the package; setup.py copies them into the
wheel. These tests build the wheel from a copy of the sources, install it into a fresh virtualenv (its
dependencies come from this machine's site-packages: no download) and run its own `atacdenoise denoise`
from a folder that has nothing to do with the repository.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from atacdenoise.bundled import REPOSITORY_MODELS, bundled_models_dir

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "pyscripts", "registry/models"]


def test_a_source_checkout_reads_the_repository_models():
    """No copy of the models inside the package source: the repository folder is the only one."""
    assert bundled_models_dir() == REPOSITORY_MODELS
    assert sorted(REPOSITORY_MODELS.glob("*.onnx"))


def run(command: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the venv's own package, not pyscripts/
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A wheel built from a copy of the sources and the venv it is installed in (non-editable)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", source,
         "-w", root / "wheel"], cwd=root)
    wheel = next((root / "wheel").glob("atacdenoise-*.whl"))
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", venv], cwd=root)
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], cwd=root)
    return {"root": root, "wheel": wheel, "venv": venv}


@pytest.mark.slow
def test_the_wheel_carries_every_bundled_model_and_its_card(installed):
    shipped = {Path(name).name for name in zipfile.ZipFile(installed["wheel"]).namelist()
               if name.startswith("atacdenoise/registry/models/")}
    expected = {p.name for p in REPOSITORY_MODELS.iterdir() if p.suffix in (".onnx", ".md")}
    assert shipped == expected


@pytest.mark.slow
def test_an_installed_wheel_denoises_with_its_bundled_model(installed):
    venv, elsewhere = installed["venv"], installed["root"] / "elsewhere"
    elsewhere.mkdir()
    where = run([venv / "bin" / "python", "-c",
                 "import atacdenoise.denoise as d; print(d.BUNDLED_MODEL); print(d.BUNDLED_COUNTS_MODEL)"],
                cwd=elsewhere).stdout.split()
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert [Path(p).parent for p in where] == [site / "atacdenoise" / "registry" / "models"] * 2

    rng = np.random.default_rng(0)
    positions = np.sort(np.concatenate([rng.integers(0, 250_000, 3000), rng.integers(120_000, 120_400, 600)]))
    with gzip.open(elsewhere / "sample.insertions.bed.gz", "wt") as out:
        out.write("".join(f"chrA\t{p}\t{p + 1}\t.\t0\t+\n" for p in positions))
    (elsewhere / "chrom.sizes").write_text("chrA\t250000\n")
    result = run([venv / "bin" / "atacdenoise", "denoise", "--input", "sample.insertions.bed.gz",
                  "--chrom-sizes", "chrom.sizes", "--out-prefix", "out/sample"], cwd=elsewhere)
    assert "atac-denoiser-counts.onnx" in result.stderr  # no annotation files given: the counts-only model

    import pyBigWig

    with pyBigWig.open(str(elsewhere / "out" / "sample.denoised.bw")) as bw:
        assert bw.chroms() == {"chrA": 250_000}
        assert bw.stats("chrA", 119_000, 121_500, type="max")[0] > bw.stats("chrA", 200_000, 250_000)[0] > 0
    assert (elsewhere / "out" / "sample.peakprob.bw").stat().st_size > 0
