"""Faults, races and corrupt input, run as a user would: through the CLI, against real services and files.

Each case asserts the exit status, the one-line message and that no output (or
temporary) is left behind. The registry cases start a real ``mlflow server``
(SQLite, local artifacts) and SIGKILL its process group mid-registration
through the test-only hook ``$ATACDENOISE_TEST_KILL_SERVER_AT`` (STAGE:PGID).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(argv: list[str], env: dict[str, str] | None = None, timeout: float = 180,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``atacdenoise ARGV`` in a fresh interpreter importing this tree."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "pyscripts"), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "atacdenoise.cli", *map(str, argv)], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=cwd)


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one error line; fails on a traceback or on several error lines."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("atacdenoise: error:")]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


# ---------------------------------------------------------------- registry: a server killed mid-registration

@pytest.fixture(scope="module")
def search_folder(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("mlflow")
    from test_registry import make_pairs, make_search_dir

    root = tmp_path_factory.mktemp("faults-search")
    return make_search_dir(root / "search"), make_pairs(root / "val.npz")


def test_register_gives_up_quickly_when_the_server_is_down(search_folder, tmp_path):
    from atacdenoise.registry.server import free_port

    search, pairs = search_folder
    before = sorted(p.name for p in search.iterdir())
    started = time.monotonic()
    result = run_cli(["registry", "register", search, "--data", pairs, "--tracking-uri",
                      f"http://127.0.0.1:{free_port()}", "--timeout", "4"])
    elapsed = time.monotonic() - started
    assert result.returncode == 2
    assert "unreachable" in error_line(result)
    assert elapsed < 4 + 25  # the deadline, plus starting python and exporting the model on a busy CPU
    assert sorted(p.name for p in search.iterdir()) == before


def test_registration_survives_server_kills_at_every_stage(search_folder, tmp_path):
    """Kill the server during run logging, during the upload and right after the version is made, restarting
    it each time; the last retry completes the one half-made version: tags, card, alias, no RUNNING run."""
    from mlflow.tracking import MlflowClient

    from atacdenoise.registry.server import free_port, start_server

    search, pairs = search_folder
    workdir, port = tmp_path / "mlflow", free_port()
    url = f"http://127.0.0.1:{port}"
    name = "atac-denoiser-faults"
    command = ["registry", "register", search, "--data", pairs, "--tracking-uri", url, "--name", name,
               "--genome", "hg19", "--alias", "challenger", "--timeout", "60"]
    for stage in ("run-logging", "upload", "version-created"):
        server = start_server(workdir, port=port, timeout=120)
        try:
            if stage == "run-logging":  # first, a deadline that passes while the server is alive
                result = run_cli([*command[:-1], "1"])
                line = error_line(result)
                assert result.returncode == 2 and "gave up registering" in line, line
                assert "(--timeout 1 s without progress)" in line, line
                client = MlflowClient(url)
                experiment = client.get_experiment_by_name("atacdenoise-search")
                runs = client.search_runs([experiment.experiment_id]) if experiment else []
                assert not [r for r in runs if r.info.status == "RUNNING"], line  # it ended its runs FAILED
                if runs:
                    assert f"{len(runs)} of its {len(runs)} runs marked FAILED" in line, line
            result = run_cli(command, env={"ATACDENOISE_TEST_KILL_SERVER_AT": f"{stage}:{server.process.pid}"})
            assert result.returncode == 2, (stage, result.stderr[-3000:])
            line = error_line(result)
            assert "gave up registering" in line and "rerun the same command" in line, line
            assert server.process.poll() is not None  # the hook really killed it
        finally:
            server.stop(grace=3)

    with start_server(workdir, port=port, timeout=120):
        result = run_cli(command)
        assert result.returncode == 0, result.stderr[-3000:]
        outcome = json.loads(result.stdout.strip().splitlines()[-1])
        assert outcome["resumed"] is True and outcome["version"] == "1"

        client = MlflowClient(url, registry_uri=url)
        versions = client.search_model_versions(f"name='{name}'")
        assert [v.version for v in versions] == ["1"]
        version = versions[0]
        assert version.tags["genome"] == "hg19" and version.tags["bin_size"] == "25"
        assert version.tags["atacdenoise.model_sha256"] == outcome["model_sha256"]
        assert "model card" in version.description
        assert client.get_model_version_by_alias(name, "challenger").version == "1"
        experiment = client.get_experiment_by_name("atacdenoise-search")
        runs = client.search_runs([experiment.experiment_id])
        assert runs and not [r.info.run_id for r in runs if r.info.status == "RUNNING"]
        assert client.get_run(outcome["run_id"]).info.status == "FINISHED"
        assert {r.info.status for r in runs} <= {"FINISHED", "FAILED"}
        pending = [m for m in client.search_logged_models([experiment.experiment_id])
                   if str(m.status).endswith("PENDING")]
        assert not pending


def _group_alive(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``, from /proc."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            alive.append(int(stat.parent.name))
    return alive


def test_serve_stops_its_server_on_sigterm_and_refuses_a_busy_port(tmp_path):
    pytest.importorskip("mlflow")
    import signal

    from atacdenoise.io.tracking_server import is_healthy
    from atacdenoise.registry.server import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "pyscripts"), "OMP_NUM_THREADS": "1"}
    serve = subprocess.Popen([sys.executable, "-m", "atacdenoise.cli", "registry", "serve", "--workdir",
                              str(tmp_path / "mlflow"), "--port", str(port)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        assert "MLflow tracking server at" in serve.stdout.readline()  # printed once healthy
        children = Path(f"/proc/{serve.pid}/task/{serve.pid}/children").read_text().split()
        assert len(children) == 1
        server_pgid = int(children[0])  # the server runs in its own session: pgid == pid
        assert _group_alive(server_pgid)

        second = run_cli(["registry", "serve", "--workdir", tmp_path / "other", "--port", port], timeout=60)
        assert second.returncode == 2
        assert f"port {port} is already in use (an MLflow server answers there)" in error_line(second)
        assert not (tmp_path / "other" / "mlflow-server.log").exists()

        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while _group_alive(server_pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(server_pgid), "the mlflow server outlived 'registry serve'"
        assert not is_healthy(f"http://127.0.0.1:{port}")
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)


def test_denoise_from_a_registry_that_is_down_says_how_to_point_at_it(tmp_path):
    from atacdenoise.registry.server import free_port

    (tmp_path / "sizes").write_text("chr1\t50000\n")
    (tmp_path / "ins.bed").write_text("chr1\t100\t101\t.\t0\t+\n")
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli(["denoise", "--input", tmp_path / "ins.bed", "--chrom-sizes", tmp_path / "sizes",
                      "--model", "models:/atac-denoiser@champion", "--tracking-uri", url,
                      "--out-prefix", tmp_path / "out" / "s", "--quiet"])
    assert result.returncode == 2
    line = error_line(result)
    assert url in line and "unreachable" in line and "--tracking-uri or MLFLOW_TRACKING_URI" in line, line
    assert "registry register" not in line
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- two runs, one output

def _insertions(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    (tmp_path / "sizes").write_text("chr1\t50000\nchr2\t30000\n")
    with open(tmp_path / "ins.bed", "w") as out:
        for chrom, length in (("chr1", 50_000), ("chr2", 30_000)):
            out.write("".join(f"{chrom}\t{p}\t{p + 1}\t.\t0\t+\n" for p in np.sort(rng.integers(0, length, 300))))
    return tmp_path / "ins.bed", tmp_path / "sizes"


def test_a_second_run_on_a_locked_output_fails_at_once_and_a_dead_holder_is_taken_over(tmp_path):
    import signal

    from atacdenoise.io.lock import lock_path

    reads, sizes = _insertions(tmp_path)
    prefix = tmp_path / "out" / "sample"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom atacdenoise.io.lock import output_lock\n"
         "with output_lock(sys.argv[1], 'atacdenoise bin (the first run)'):\n"
         "    print('held', flush=True)\n    time.sleep(120)\n", str(prefix)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "pyscripts")})
    try:
        assert holder.stdout.readline().strip() == "held"
        command = ["bin", "--input", reads, "--chrom-sizes", sizes, "--out-prefix", prefix]
        started = time.monotonic()
        second = run_cli(command)
        assert second.returncode == 2 and time.monotonic() - started < 30
        line = error_line(second)
        assert f"{prefix}: in use by another run (pid {holder.pid} on host" in line
        assert "atacdenoise bin (the first run)" in line
        assert sorted(p.name for p in prefix.parent.iterdir()) == [lock_path(prefix).name]  # nothing written

        holder.send_signal(signal.SIGKILL)  # dies holding it: the lock file stays, the kernel lock goes
        holder.wait(timeout=10)
        assert lock_path(prefix).exists()
        third = run_cli(command)
        assert third.returncode == 0, third.stderr[-2000:]
        assert "took over the lock" in third.stderr and f"pid {holder.pid}" in third.stderr
        assert not lock_path(prefix).exists()
        assert (tmp_path / "out" / "sample.bw").is_file()
    finally:
        if holder.poll() is None:
            holder.kill()


def _tiny_pairs(folder: Path) -> tuple[Path, Path]:
    """(train.npz, val.npz) small enough for a search of a few seconds: 16 windows of one chromosome."""
    from atacdenoise.search.data import load_pairs, save_pairs

    from test_registry import make_pairs

    val = make_pairs(folder / "val.npz", n=16)
    train = load_pairs(val)
    train["chrom"] = np.full(len(train["inputs"]), "chr1")
    train["meta"] = {**train["meta"], "chroms": ["chr1"]}
    save_pairs(folder / "train.npz", train)
    return folder / "train.npz", val


def test_two_concurrent_searches_into_one_folder_cannot_both_write(tmp_path):
    """Two real 'search' runs started together on one --outdir: at most one writes, the other names it."""
    pytest.importorskip("torch")
    train, val = _tiny_pairs(tmp_path)
    out = tmp_path / "search"
    command = [sys.executable, "-m", "atacdenoise.cli", "search", "--train", train, "--val", val,
               "--outdir", out,
               "--space", "hilbert2d", "--iterations", "0", "--initial-draws", "1", "--initial-epochs", "1",
               "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "pyscripts"), "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen(list(map(str, command)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env) for _ in range(2)]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    codes = sorted(code for code, _, _ in results)
    refused = [err for code, _, err in results if code == 2]
    assert codes == [0, 2], results
    # Started together, the second meets the lock; had the first already finished, the folder is not empty.
    assert "in use by another run" in refused[0] or "not empty" in refused[0], refused[0]
    assert (out / "summary.json").is_file()


# ---------------------------------------------------------------- corrupt input: one line, exit 2, nothing written

def _write_bam(path: Path, n: int, seed: int) -> Path:
    """A small coordinate-sorted, indexed BAM (several BGZF blocks), made with pysam."""
    import pysam

    rng = np.random.default_rng(seed)
    header = {"HD": {"VN": "1.6", "SO": "coordinate"},
              "SQ": [{"SN": "chr1", "LN": 200_000}, {"SN": "chr2", "LN": 100_000}]}
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for tid, length in ((0, 200_000), (1, 100_000)):
            for i, pos in enumerate(np.sort(rng.integers(0, length - 100, n))):
                read = pysam.AlignedSegment()
                read.query_name, read.query_sequence, read.flag = f"r{tid}_{i}", "A" * 50, 0 if i % 2 else 16
                read.reference_id, read.reference_start, read.mapping_quality = tid, int(pos), 60
                read.cigarstring, read.query_qualities = "50M", pysam.qualitystring_to_array("I" * 50)
                out.write(read)
    pysam.index(str(path))
    return path


@pytest.fixture
def inputs(tmp_path):
    import shutil

    good = _write_bam(tmp_path / "good.bam", 4000, 0)
    other = _write_bam(tmp_path / "other.bam", 1000, 1)
    data = bytearray(good.read_bytes())
    data[len(data) // 2: len(data) // 2 + 300] = np.random.default_rng(0).integers(0, 256, 300, np.uint8).tobytes()
    (tmp_path / "corrupt.bam").write_bytes(bytes(data))
    shutil.copy(f"{good}.bai", tmp_path / "corrupt.bam.bai")
    shutil.copy(good, tmp_path / "stale.bam")
    shutil.copy(f"{other}.bai", tmp_path / "stale.bam.bai")  # the index of another file

    lines = "".join(f"chr1\t{p}\t{p + 1}\t.\t{p % 97}\t+\n" for p in range(0, 200_000, 7)).encode()
    raw = gzip.compress(lines, mtime=0)
    for offset in range(len(raw) // 4, len(raw), 97):  # the first mid-file byte whose flip breaks the deflate stream
        damaged = bytearray(raw)
        damaged[offset] ^= 0xFF
        try:
            gzip.decompress(bytes(damaged))
        except Exception as err:  # noqa: BLE001 - looking for zlib.error in particular
            if type(err).__name__ == "error":
                break
    (tmp_path / "corrupt.bed.gz").write_bytes(bytes(damaged))

    (tmp_path / "sizes").write_text("chr1\t200000\nchr2\t100000\n")
    (tmp_path / "sizes.gz").write_bytes(gzip.compress(b"chr1\t200000\n"))
    (tmp_path / "sizes.bin").write_bytes(np.random.default_rng(1).integers(0, 256, 300, np.uint8).tobytes())
    (tmp_path / "sizes.dir").mkdir()
    (tmp_path / "sizes.huge").write_text("chr1\t200000\nchr2\t99999999999\n")  # found by the fuzz test below
    return tmp_path


@pytest.mark.parametrize("source, sizes, expected", [
    ("corrupt.bam", None, "corrupt.bam: cannot read records on chr1 (truncated file): the file is corrupt"),
    ("stale.bam", None, "stale.bam: its index stale.bam.bai does not match it (a stale index"),
    ("corrupt.bed.gz", "sizes", "corrupt.bed.gz: line "),
    ("good.bam", "sizes.gz", "sizes.gz: chrom sizes file is gzip-compressed"),
    ("good.bam", "sizes.bin", "sizes.bin: line 1: not text (binary byte"),
    ("good.bam", "sizes.dir", "sizes.dir: is a folder, expected a chrom sizes file"),
    ("good.bam", "sizes.huge", "sizes.huge: line 2: length 99,999,999,999 of chr2 is beyond what a bigWig holds"),
])
def test_corrupt_input_is_one_line_and_writes_nothing(inputs, source, sizes, expected):
    pytest.importorskip("pysam")
    for command, output in (("insertions", ["--output", inputs / "out" / "x.bed.gz"]),
                            ("bin", ["--out-prefix", inputs / "out" / "x"])):
        result = run_cli([command, "--input", source, *(["--chrom-sizes", sizes] if sizes else []), *output],
                         cwd=inputs)  # relative names, as a user types them
        assert result.returncode == 2, (command, result.stderr[-2000:])
        line = error_line(result)
        assert expected in line, line
        chatter = [ln for ln in result.stderr.splitlines() if ln.strip() and "%|" not in ln and ln != line]
        assert not chatter, result.stderr  # no htslib lines either (progress bars aside)
        assert not (inputs / "out").exists(), sorted((inputs / "out").rglob("*"))
        assert line.startswith(f"atacdenoise: error: {sizes if 'sizes.' in (sizes or '') else source}: ")
    if source == "corrupt.bed.gz":
        assert "Error -3 while decompressing" in line and "corrupt, truncated or not text" in line, line


def test_absurd_fragment_count_is_refused_with_its_line(tmp_path):
    (tmp_path / "sizes").write_text("chr1\t50000\n")
    (tmp_path / "f.tsv").write_text("chr1\t100\t300\tAAA\t2\nchr1\t200\t400\tCCC\t1000000000\n")
    result = run_cli(["insertions", "--input", "f.tsv", "--format", "fragments", "--chrom-sizes", "sizes",
                      "--output", tmp_path / "out" / "x.bed"], cwd=tmp_path)
    assert result.returncode == 2
    assert "f.tsv: line 2: count 1000000000 is implausible" in error_line(result)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- bounded fuzz: no traceback, hang or partial output

def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random edit: flip bytes, or delete, duplicate, swap or garble whole lines."""
    kind = rng.integers(4)
    if kind == 0 or b"\n" not in data:
        out = bytearray(data)
        for at in rng.integers(0, len(out), rng.integers(1, 6)):
            out[at] ^= int(rng.integers(1, 256))
        return bytes(out)
    lines = data.split(b"\n")
    i, j = (int(x) for x in rng.integers(0, len(lines), 2))
    if kind == 1:
        del lines[i]
    elif kind == 2:
        lines[i], lines[j] = lines[j], lines[i]
    else:
        fields = lines[i].split(b"\t")
        fields[int(rng.integers(len(fields)))] = rng.choice([b"", b"-5", b"x", b"99999999999", b"1.5", b"\xff\xfe"])
        lines[i] = b"\t".join(fields)
    return b"\n".join(lines)


def test_fuzzed_inputs_never_traceback_hang_or_leave_partial_output(tmp_path, capsys):
    from atacdenoise.cli import main

    rng = np.random.default_rng(17)
    lines = []
    for chrom, length in (("chr1", 60_000), ("chr2", 40_000)):
        for start in np.sort(rng.integers(0, length - 500, 150)):
            lines.append(f"{chrom}\t{start}\t{start + int(rng.integers(50, 400))}\tBC{start % 7}\t{rng.integers(1, 4)}")
    fragments = ("\n".join(lines) + "\n").encode()
    sizes = b"chr1\t60000\nchr2\t40000\n"
    started = time.monotonic()
    outcomes = {0: 0, 2: 0}
    for case in range(100):
        folder = tmp_path / f"case{case}"
        folder.mkdir()
        target = case % 3  # which input gets the edit: plain fragments, gzipped fragments, chrom sizes
        frag = _mutate(fragments, rng) if target != 2 else fragments
        if target == 1:
            frag = gzip.compress(fragments, mtime=0)
            frag = _mutate(frag, rng)
        (folder / ("f.tsv.gz" if target == 1 else "f.tsv")).write_bytes(frag)
        (folder / "sizes").write_bytes(_mutate(sizes, rng) if target == 2 else sizes)
        command = ["insertions", "--output", str(folder / "out" / "x.bed")] if case % 2 else \
            ["bin", "--out-prefix", str(folder / "out" / "x"), "--bin-size", "100"]
        one = time.monotonic()
        code = main([*command, "--input", str(folder / ("f.tsv.gz" if target == 1 else "f.tsv")),
                     "--format", "fragments", "--chrom-sizes", str(folder / "sizes")])
        assert time.monotonic() - one < 10, f"case {case} took too long"
        assert code in (0, 2), case
        outcomes[code] += 1
        err = capsys.readouterr().err
        if code == 2:
            assert len([ln for ln in err.splitlines() if ln.startswith("atacdenoise: error:")]) == 1, err
            assert not (folder / "out").exists(), (case, sorted((folder / "out").iterdir()))
        else:
            written = sorted(p.name for p in (folder / "out").iterdir())  # no temporary, no lock
            assert written == (["x.bed"] if case % 2 else ["x.bw", "x.tracks"]), (case, written)
    assert outcomes[0] > 10 and outcomes[2] > 10, outcomes  # the edits both pass (harmless ones) and fail
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("extra, expected", [
    (["--window", "0"], "--window: must be positive, got 0"),
    (["--target", "0"], "--target: must be positive, got 0"),
    (["--bin-size", "0"], "--bin-size: must be positive, got 0"),
    (["--window", "-5"], "--window: must be positive, got -5"),
    (["--target", "5000"], "--target: 5000 bins is larger than --window 4096"),
    (["--depths", "1.5"], "--depths: 1.5 is outside (0, 1]"),
])
def test_prepare_refuses_impossible_sizes_naming_the_option(tmp_path, capsys, extra, expected):
    from atacdenoise.cli import main

    (tmp_path / "sizes").write_text("chr1\t50000\nchr2\t50000\n")
    code = main(["prepare", "--insertions", str(tmp_path / "ins.bed"), "--clean-bigwig", str(tmp_path / "c.bw"),
                 "--clean-peaks", str(tmp_path / "p.bed"), "--chrom-sizes", str(tmp_path / "sizes"),
                 "--train-chroms", "chr1", "--val-chroms", "chr2", "--outdir", str(tmp_path / "out" / "pairs"), *extra])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"atacdenoise: error: {expected}"), err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- interrupted runs leave no litter

def test_an_interrupted_denoise_leaves_no_temporaries(tmp_path):
    """SIGTERM: the run removes its temporaries itself. SIGKILL: the next run on that prefix removes them."""
    import signal

    rng = np.random.default_rng(0)
    (tmp_path / "sizes").write_text("chr1\t20000000\n")
    with open(tmp_path / "ins.bed", "w") as out:
        out.write("".join(f"chr1\t{p}\t{p + 1}\t.\t0\t+\n" for p in np.sort(rng.integers(0, 20_000_000, 40_000))))
    folder = tmp_path / "out"
    command = [sys.executable, "-m", "atacdenoise.cli", "denoise", "--input", str(tmp_path / "ins.bed"),
               "--chrom-sizes", str(tmp_path / "sizes"), "--out-prefix", str(folder / "s"), "--quiet",
               "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "pyscripts"), "OMP_NUM_THREADS": "1"}

    def start_and_wait_for_scratch() -> subprocess.Popen:
        run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 120
        while not list(folder.glob(".s.denoised.bw.*")):  # the bigWig being written, under its temporary name
            assert run.poll() is None, run.stderr.read()
            assert time.monotonic() < deadline, "denoise never started writing"
            time.sleep(0.05)
        return run

    run = start_and_wait_for_scratch()
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 143
    assert "terminated" in run.stderr.read()
    assert not folder.exists(), sorted(p.name for p in folder.iterdir())

    run = start_and_wait_for_scratch()
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=60)
    left = sorted(p.name for p in folder.iterdir())
    assert any(name.startswith(".s.denoised.bw.") for name in left) and ".s.atacdenoise.lock" in left, left

    again = run_cli(["denoise", "--input", tmp_path / "ins.bed", "--chrom-sizes", tmp_path / "sizes",
                     "--out-prefix", folder / "s", "--model", tmp_path / "missing.onnx"])
    assert again.returncode == 2  # fails on its own input, but took over the dead run's lock first
    assert "took over the lock" in again.stderr and "removed" in again.stderr, again.stderr
    assert not folder.exists() or not list(folder.iterdir()), sorted(p.name for p in folder.iterdir())


def test_coordinates_outside_the_chromosome_are_counted_and_warned(tmp_path):
    (tmp_path / "sizes").write_text("chr1\t200000\nchr2\t100000\n")
    (tmp_path / "neg.bed").write_text("chr1\t-5\t10\nchr1\t100\t101\nchr2\t99999\t100000\nchr2\t100000\t100001\n")
    result = run_cli(["insertions", "--input", "neg.bed", "--format", "insertions", "--chrom-sizes", "sizes",
                      "--output", "out.bed", "--stats"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outside_chrom"] == 2
    warnings = [ln for ln in result.stderr.splitlines() if "warning" in ln]
    assert warnings == ["atacdenoise: warning: neg.bed: dropped 2 insertions at negative or beyond-the-end "
                        "coordinates of their chromosome (see --stats)"]
    assert (tmp_path / "out.bed").read_text().count("\n") == 2


@pytest.mark.parametrize("command, output", [("insertions", ["--output", "out/x.bed"]),
                                             ("bin", ["--out-prefix", "out/x"])])
@pytest.mark.parametrize("name, lines, expected", [
    ("neg.bed", "chr1\t100\t101\nchr1\t-5\t10\n", "neg.bed: line 2: start -5 is negative (--strict)"),
    ("end.bed", "chr1\t100\t101\nchr2\t99999\t100000\nchr2\t100000\t100001\n",
     "end.bed: line 3: start 100000 is beyond the end of chr2 (100,000 bp) (--strict)"),
    ("f.tsv", "chr1\t100\t300\tA\t1\nchr2\t99000\t100001\tB\t1\n",
     "f.tsv: line 2: end 100001 is beyond the end of chr2 (100,000 bp) (--strict)"),
])
def test_strict_makes_coordinates_outside_the_chromosome_an_error(tmp_path, command, output, name, lines, expected):
    (tmp_path / "sizes").write_text("chr1\t200000\nchr2\t100000\n")
    (tmp_path / name).write_text(lines)
    fmt = "fragments" if name.endswith(".tsv") else "insertions"
    base = [command, "--input", name, "--format", fmt, "--chrom-sizes", "sizes", *output]
    result = run_cli([*base, "--strict"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert error_line(result) == f"atacdenoise: error: {expected}"
    assert not (tmp_path / "out").exists()
    lenient = run_cli(base, cwd=tmp_path)  # without --strict the same file is read, the line dropped and counted
    assert lenient.returncode == 0, lenient.stderr
    assert "dropped 1 insertions at negative or beyond-the-end coordinates" in lenient.stderr


# ---------------------------------------------------------------- ONNX whose graph disagrees with its metadata

def _onnx_model(path: Path, metadata: dict[str, str], window: int = 256, target: int = 64,
                input_type: str = "FLOAT") -> Path:
    """A hand-built denoiser graph: signal = the window's centre, peak_logits = signal - 1, taking ``x`` of
    ``input_type`` (cast to float inside), with the given ``metadata_props`` whatever the graph is."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    flank = (window - target) // 2
    ints = lambda name, values: helper.make_tensor(name, TensorProto.INT64, [len(values)], values)  # noqa: E731
    nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("Slice", ["xf", "starts", "ends", "axes"], ["signal"]),
             helper.make_node("Sub", ["signal", "one"], ["peak_logits"])]
    graph = helper.make_graph(
        nodes, "centre", [helper.make_tensor_value_info("x", getattr(TensorProto, input_type), ["batch", window])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", target]) for name in ("signal",
                                                                                                 "peak_logits")],
        initializer=[ints("starts", [flank]), ints("ends", [flank + target]), ints("axes", [1]),
                     helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("case, expected", [
    ("target-width", "graph 'signal' has shape ['batch', 64] but its metadata says target_bins 32"),
    ("window-width", "graph 'x' has shape ['batch', 256] but its metadata says window_bins 512"),
    ("int64-input", "graph 'x' is tensor(int64), but a denoiser takes and gives float32 (tensor(float))"),
    ("bin-size-abc", "ONNX metadata atacdenoise.bin_size is 'abc', not an integer"),
    ("bin-size-0", "ONNX metadata: bin_size must be positive, got 0"),
    ("bin-size-negative", "ONNX metadata: bin_size must be positive, got -25"),
    ("no-window", "ONNX metadata lacks atacdenoise.window_bins"),
])
def test_an_onnx_model_disagreeing_with_its_metadata_is_refused_at_load(tmp_path, case, expected):
    pytest.importorskip("onnxruntime")
    from atacdenoise.denoise.contract import ModelContract

    metadata = ModelContract(space="dilated1d", window_bins=256, target_bins=64, genome="hg19").to_metadata()
    graph = {}
    if case == "target-width":
        metadata["atacdenoise.target_bins"] = "32"
    elif case == "window-width":
        metadata["atacdenoise.window_bins"] = "512"
    elif case == "int64-input":
        graph["input_type"] = "INT64"
    elif case.startswith("bin-size"):
        metadata["atacdenoise.bin_size"] = {"abc": "abc", "0": "0", "negative": "-25"}[case.split("-")[-1]]
    else:
        del metadata["atacdenoise.window_bins"]
    _onnx_model(tmp_path / "bad.onnx", metadata, **graph)
    (tmp_path / "sizes").write_text("chr1\t50000\n")
    (tmp_path / "ins.bed").write_text("chr1\t100\t101\t.\t0\t+\n")
    result = run_cli(["denoise", "--input", "ins.bed", "--chrom-sizes", "sizes", "--model", "bad.onnx",
                      "--out-prefix", "out/s", "--quiet"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert error_line(result) == f"atacdenoise: error: bad.onnx: {expected}"
    assert not (tmp_path / "out").exists()


def test_the_onnx_model_builder_makes_a_model_that_loads(tmp_path):
    """The control for the case above: the same graph with honest metadata denoises."""
    pytest.importorskip("onnxruntime")
    from atacdenoise.denoise.contract import ModelContract

    metadata = ModelContract(space="dilated1d", window_bins=256, target_bins=64, genome="hg19").to_metadata()
    _onnx_model(tmp_path / "good.onnx", metadata)
    (tmp_path / "sizes").write_text("chr1\t50000\n")
    (tmp_path / "ins.bed").write_text("".join(f"chr1\t{p}\t{p + 1}\t.\t0\t+\n" for p in range(100, 40000, 300)))
    result = run_cli(["denoise", "--input", "ins.bed", "--chrom-sizes", "sizes", "--model", "good.onnx",
                      "--out-prefix", "out/s", "--quiet"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "s.denoised.bw").is_file()


# ---------------------------------------------------------------- a full disk: one line, earlier outputs intact

@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs at ``tmp_path/disk``, unmounted afterwards; skipped where mounting is not permitted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True,
                           text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mount.stderr.strip() or 'mount failed'}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` with a file until only about ``leave`` bytes are free."""
    stats = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * (stats.f_bfree * stats.f_frsize - leave))


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) and its bytes, but the filler."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "filler"}


def _assert_no_space(result: subprocess.CompletedProcess, output: Path) -> None:
    assert result.returncode == 2, result.stderr[-3000:]
    assert error_line(result) == f"atacdenoise: error: no space left on device writing {output}"


@pytest.mark.parametrize("leave, fails_on", [(0, "x"), (12_000, "x.tracks"), (30_000, "x.bw")])
def test_bin_onto_a_full_disk_says_so_and_keeps_the_earlier_store_and_bigwig(small_disk, tmp_path, leave, fails_on):
    """With nothing left not even the lock of prefix x; with 12 kB the array store (20 kB on tmpfs) cannot be written;
    with 30 kB it can, but then not the bigWig (9 kB and its zoom records)."""
    reads, sizes = _insertions(tmp_path)
    prefix = small_disk / "out" / "x"
    first = run_cli(["bin", "--input", reads, "--chrom-sizes", sizes, "--out-prefix", prefix, "--quiet"])
    assert first.returncode == 0, first.stderr
    before = _snapshot(small_disk)
    assert set(before) >= {"out/x.bw", "out/x.tracks/meta.json"}
    _fill(small_disk, leave)
    result = run_cli(["bin", "--input", reads, "--chrom-sizes", sizes, "--out-prefix", prefix, "--quiet",
                      "--extend", "3000"])  # a new store and bigWig would differ from the earlier ones
    _assert_no_space(result, small_disk / "out" / fails_on)
    assert _snapshot(small_disk) == before  # the earlier pair intact, no temporary and no lock left


def test_denoise_onto_a_full_disk_says_so_and_keeps_the_earlier_tracks(small_disk, tmp_path):
    pytest.importorskip("onnxruntime")
    from atacdenoise.denoise.contract import ModelContract

    model = _onnx_model(tmp_path / "m.onnx", ModelContract(space="dilated1d", window_bins=256, target_bins=64,
                                                            genome="hg19").to_metadata())
    reads, sizes = _insertions(tmp_path)
    command = ["denoise", "--chrom-sizes", sizes, "--model", model, "--out-prefix", small_disk / "out" / "s", "--quiet"]
    first = run_cli([*command, "--input", reads])
    assert first.returncode == 0, first.stderr
    before = _snapshot(small_disk)
    assert len(before) == 6  # the set of four, then the peaks as bigBed and the IGV session
    _fill(small_disk, 40_000)
    result = run_cli([*command, "--input", reads, "--threshold", "0.3"])
    _assert_no_space(result, small_disk / "out" / "s.denoised.bw")
    assert _snapshot(small_disk) == before


def test_a_search_checkpoint_onto_a_full_disk_says_so_and_keeps_the_earlier_checkpoint(small_disk, tmp_path):
    pytest.importorskip("torch")
    train, val = _tiny_pairs(tmp_path)
    out = small_disk / "search"
    command = ["search", "--train", train, "--val", val, "--outdir", out, "--space", "dilated1d",
               "--initial-draws", "1", "--initial-epochs", "1", "--children", "1", "--epochs", "1", "--quiet"]
    first = run_cli([*command, "--iterations", "0"], timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    before = _snapshot(small_disk)
    assert "search/checkpoint/checkpoint.pt" in before
    _fill(small_disk, 8_192)
    result = run_cli([*command, "--iterations", "1", "--resume"], timeout=300)  # checkpoints before it trains
    _assert_no_space(result, out / "checkpoint" / "checkpoint.pt")
    assert _snapshot(small_disk) == before


# ---------------------------------------------------------------- a command's files are written as one set

def _fail_once_written(monkeypatch, module: str, name: str, folder: Path, written: list[str]):
    """Replace ``module.name`` by a failure that first checks the set's files ``written`` (glob patterns of
    their temporaries) are already complete beside the outputs: the failure comes after them."""
    import errno
    import importlib

    def fail(*args, **kwargs):
        for pattern in written:
            assert [p for p in folder.glob(pattern) if p.stat().st_size > 0], (pattern, sorted(folder.iterdir()))
        raise OSError(errno.EIO, "injected I/O error")

    monkeypatch.setattr(importlib.import_module(module), name, fail)


@pytest.mark.parametrize("command", ["bin", "denoise", "peaks"])
def test_a_failure_after_the_first_file_of_a_set_leaves_none_of_the_new_set(tmp_path, capsys, monkeypatch, command):
    """A second run on the same prefix fails after writing part of its set: the first run's complete set is
    all that is left, byte for byte (no new file, no temporary, no lock)."""
    from atacdenoise.cli import main

    reads, sizes = _insertions(tmp_path)
    out = tmp_path / "out"
    base = [command, "--input", str(reads), "--chrom-sizes", str(sizes), "--out-prefix", str(out / "s"), "--quiet"]
    if command == "denoise":
        pytest.importorskip("onnxruntime")
        from atacdenoise.denoise.contract import ModelContract

        model = _onnx_model(tmp_path / "m.onnx", ModelContract(space="dilated1d", window_bins=256, target_bins=64,
                                                                genome="hg19").to_metadata())
        base += ["--model", str(model)]
        again, failing = ["--threshold", "0.3"], ("atacdenoise.denoise.run", "write_provenance")
        written = [".s.denoised.bw.*", ".s.peakprob.bw.*", ".s.peaks.narrowPeak.*"]
    elif command == "bin":
        again, failing, written = ["--extend", "3000"], ("atacdenoise.io.bigwig", "write_bigwig"), [".s.tracks.*"]
    else:
        import shutil

        if shutil.which("macs3") is None:
            pytest.skip("macs3 is not installed")
        again, failing = ["--low-threshold"], ("atacdenoise.tracks.peaks", "_bedgraph_to_bigwig")
        written = [".s.narrowPeak.*"]
    assert main(base) == 0, capsys.readouterr().err
    before = _snapshot(out)
    assert len(before) >= 2
    capsys.readouterr()

    _fail_once_written(monkeypatch, *failing, out, written)
    assert main([*base, *again]) == 1  # an internal error, as an I/O error is
    assert "injected I/O error" in capsys.readouterr().err
    assert _snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted({key.split("/")[0] for key in before})
