"""Install time: a plain ``pip install .`` into a fresh virtualenv, downloading from PyPI (no pip cache).

    python benchmarks/bench_install.py                 # the base install, then a denoise with the bundled model
    python benchmarks/bench_install.py --with-peaks    # also time adding the [peaks] extra (MACS3 compiles)

Prints a Markdown table: wall and CPU seconds of each install, the virtualenv's size, and whether the
installed (non-editable) `atacdenoise denoise` ran with its bundled model from an unrelated folder.
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def timed(command: list, cwd: Path) -> tuple[float, float]:
    """Run ``command`` (failing loudly); return its wall and CPU seconds (children's user + system)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"bench_install: {' '.join(map(str, command))} failed:\n{result.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def denoise_with_bundled_model(venv: Path, work: Path) -> float:
    """Seconds for the installed ``atacdenoise denoise`` on a small synthetic input (no --model)."""
    rng = np.random.default_rng(0)
    positions = np.sort(rng.integers(0, 1_000_000, 20_000))
    with gzip.open(work / "sample.insertions.bed.gz", "wt") as out:
        out.write("".join(f"chrA\t{p}\t{p + 1}\t.\t0\t+\n" for p in positions))
    (work / "chrom.sizes").write_text("chrA\t1000000\n")
    wall, _ = timed([venv / "bin" / "atacdenoise", "denoise", "--input", "sample.insertions.bed.gz",
                     "--chrom-sizes", "chrom.sizes", "--out-prefix", "out/sample", "--quiet"], work)
    assert (work / "out" / "sample.denoised.bw").stat().st_size > 0
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--with-peaks", action="store_true", help="also time `pip install .[peaks]` (default: no)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        root = Path(tmp)
        venv = root / "venv"
        timed([sys.executable, "-m", "venv", venv], root)
        pip = [venv / "bin" / "python", "-m", "pip", "install", "--no-cache-dir", "-q"]
        wall, cpu = timed([*pip, REPO], root)
        rows.append(("`pip install .`", wall, cpu, folder_mb(venv)))
        if args.with_peaks:
            wall, cpu = timed([*pip, f"{REPO}[peaks]"], root)
            rows.append(("then `pip install '.[peaks]'` (MACS3)", wall, cpu, folder_mb(venv)))
        (root / "elsewhere").mkdir()
        denoise_s = denoise_with_bundled_model(venv, root / "elsewhere")
    print("| step | wall s | CPU s | virtualenv MB |")
    print("| --- | ---: | ---: | ---: |")
    for name, wall, cpu, size in rows:
        print(f"| {name} | {wall:.0f} | {cpu:.0f} | {size:.0f} |")
    print(f"\nThe installed (non-editable) `atacdenoise denoise` then ran with its bundled model from a folder "
          f"outside the repository: {denoise_s:.1f} s on 1 Mb with 20,000 insertions. Load average at the end: "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.")


if __name__ == "__main__":
    main()
