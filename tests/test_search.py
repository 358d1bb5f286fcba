"""NASH search: outputs, hill-climbing rules, determinism, kill-and-resume, input checks, metrics, real pairs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from atacdenoise.errors import InputError  # noqa: E402
from atacdenoise.search import candidate, nash  # noqa: E402
from atacdenoise.search.data import check_compatible, load_pairs, make_pairs, save_pairs  # noqa: E402
from atacdenoise.search.history import read_history  # noqa: E402
from atacdenoise.search.nash import run_search  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
WINDOW, TARGET = 256, 64  # Hilbert needs 4**k bins: 256 -> 16 x 16
# A tiny search: 2 random initial models, then 2 iterations of parent + 2 children.
SMALL = dict(space="hilbert2d", iterations=2, children=2, epochs=2, initial_random_draws=2, initial_epochs=1,
             batch_size=32, seed=3, lr_max=0.05)
SMALL_CLI = ["--space", "hilbert2d", "--iterations", "2", "--children", "2", "--epochs", "2", "--initial-draws", "2",
             "--initial-epochs", "1", "--batch-size", "32", "--seed", "3", "--lr-max", "0.05", "--quiet"]
N_ROWS = SMALL["initial_random_draws"] + SMALL["iterations"] * (SMALL["children"] + 1)
COMPARED = ("iteration", "child", "morphisms", "parameters", "train_loss", "val_loss", "val_pearson", "val_auprc",
            "is_parent", "chosen")

torch.set_num_threads(1)


def synthetic_pairs(n: int, seed: int, chroms: list[str], window: int = WINDOW, target: int = TARGET,
                    with_peaks: bool = True) -> dict:
    """Learnable pairs: targets are the smoothed centre of heavy-tailed inputs; peaks are the top fifth."""
    rng = np.random.default_rng(seed)
    inputs = rng.gamma(0.3, 2.0, size=(n, window)).astype(np.float32)
    kernel = np.ones(9) / 9
    smooth = np.stack([np.convolve(row, kernel, mode="same") for row in inputs])
    flank = (window - target) // 2
    targets = smooth[:, flank:flank + target].astype(np.float32)
    peaks = (targets > np.quantile(targets, 0.8)) if with_peaks else np.zeros_like(targets)
    meta = {"format": "atacdenoise-pairs/1", "bin_size": 25, "window_bins": window, "target_bins": target,
            "representation": "coverage", "chroms": chroms, "depths": [1.0]}
    return {"inputs": inputs, "targets": targets, "peaks": peaks.astype(np.uint8), "depth": np.ones(n, np.float32),
            "chrom": np.full(n, chroms[0]), "start": np.arange(n) * target, "meta": meta}


def write_pairs(path: Path, pairs: dict) -> Path:
    save_pairs(path, pairs)
    return path


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pairs")
    return {"train": write_pairs(folder / "train.npz", synthetic_pairs(160, 1, ["chrA"])),
            "val": write_pairs(folder / "val.npz", synthetic_pairs(48, 2, ["chrB"]))}


@pytest.fixture(scope="module")
def finished(data_files, tmp_path_factory) -> Path:
    """One uninterrupted tiny search, shared by the tests that only read its outputs."""
    out = tmp_path_factory.mktemp("search") / "run"
    torch.set_num_threads(1)  # as the CLI runs below: other test modules may have changed it since import
    run_search(data_files["train"], data_files["val"], out, progress=False, **SMALL)
    return out


def comparable(rows: list[dict]) -> list[tuple]:
    return [tuple(json.dumps(row[key]) for key in COMPARED) for row in rows]


# ---------------------------------------------------------------- outputs and hill-climbing rules

def test_outputs_exist_and_are_well_formed(finished, data_files):
    from atacdenoise.models import build_model

    for name in ("best_model.json", "best_model.pt", "history.jsonl", "summary.json", "search.png",
                 "checkpoint/checkpoint.pt"):
        assert (finished / name).stat().st_size > 0, name
    assert (finished / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = read_history(finished / "history.jsonl")
    assert len(rows) == N_ROWS
    assert [r["iteration"] for r in rows] == [0, 0, 1, 1, 1, 2, 2, 2]
    assert [r["is_parent"] for r in rows] == [False, False, True, False, False, True, False, False]
    for row in rows:
        assert row["val_loss"] > 0 and -1 <= row["val_pearson"] <= 1 and 0 <= row["val_auprc"] <= 1
        assert row["parameters"] > 0 and isinstance(row["morphisms"], list)
        assert (row["morphisms"] != []) == (row["iteration"] > 0 and not row["is_parent"])
    summary = json.loads((finished / "summary.json").read_text())
    assert summary["done"] and summary["iterations_finished"] == SMALL["iterations"]
    last_chosen = [r for r in rows if r["chosen"]][-1]
    assert summary["best_val_loss"] == last_chosen["val_loss"]
    # The registry logs these files as the model's training and validation datasets.
    assert summary["data_paths"] == {k: str(data_files[k].resolve()) for k in ("train", "val")}
    # The saved architecture and weights rebuild a working model with the chosen size.
    model = build_model(json.loads((finished / "best_model.json").read_text()))
    model.load_state_dict(torch.load(finished / "best_model.pt", weights_only=True))
    assert sum(p.numel() for p in model.parameters()) == last_chosen["parameters"]
    signal_, logits = model(torch.zeros(3, WINDOW))
    assert signal_.shape == logits.shape == (3, TARGET)


def test_parent_competes_and_best_never_increases(finished):
    rows = read_history(finished / "history.jsonl")
    chosen = []
    for iteration in range(SMALL["iterations"] + 1):
        candidates = [r for r in rows if r["iteration"] == iteration]
        assert sum(r["chosen"] for r in candidates) == 1
        best = next(r for r in candidates if r["chosen"])
        assert best["val_loss"] == min(r["val_loss"] for r in candidates)
        if chosen:  # the parent row carries the previous winner's validation loss
            parent = next(r for r in candidates if r["is_parent"])
            assert parent["val_loss"] == chosen[-1]["val_loss"]
        chosen.append(best)
    losses = [r["val_loss"] for r in chosen]
    assert all(later <= earlier for earlier, later in zip(losses, losses[1:]))


def test_parent_wins_when_children_are_worse(data_files, tmp_path, monkeypatch):
    real_train_child = candidate.train_child

    def children_lose(model, data, settings, seed):
        model, metrics = real_train_child(model, data, settings, seed)
        if settings.epochs == SMALL["epochs"]:  # a NASH child, not an initial model (those train 1 epoch)
            metrics["val_loss"] += 1e6
        return model, metrics

    monkeypatch.setattr(candidate, "train_child", children_lose)
    run_search(data_files["train"], data_files["val"], tmp_path / "out", progress=False, **SMALL)
    rows = read_history(tmp_path / "out" / "history.jsonl")
    assert all(r["is_parent"] for r in rows if r["chosen"] and r["iteration"] > 0)
    initial = next(r for r in rows if r["chosen"])
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["best_val_loss"] == initial["val_loss"]


def test_same_seed_gives_identical_history_on_cpu(data_files, finished, tmp_path):
    run_search(data_files["train"], data_files["val"], tmp_path / "again", progress=False, **SMALL)
    assert comparable(read_history(tmp_path / "again" / "history.jsonl")) == \
        comparable(read_history(finished / "history.jsonl"))


# ---------------------------------------------------------------- checkpoints

def cli_search(data_files, out: Path, *extra: str) -> subprocess.Popen:
    """The real command in a child process (single-threaded, like this test process), in its own process group."""
    code = ("import sys, torch; torch.set_num_threads(1); from atacdenoise.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    argv = [sys.executable, "-c", code, "search", "--train", str(data_files["train"]), "--val",
            str(data_files["val"]), "--outdir", str(out), *SMALL_CLI, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_killed_search_resumes_to_the_same_history(data_files, finished, tmp_path, workers):
    out = tmp_path / "killed"
    history = out / "history.jsonl"  # rewritten (atomically) with every checkpoint
    process = cli_search(data_files, out, "--parallel-children", workers)
    deadline = time.monotonic() + 60
    # Kill inside the first NASH iteration, once a child has been trained: the checkpoint
    # then holds a parent, a best child so far and a half-finished iteration.
    while process.poll() is None and time.monotonic() < deadline:
        if history.exists() and len(read_history(history)) >= SMALL["initial_random_draws"] + 2:
            break
        time.sleep(0.005)
    assert process.poll() is None, f"search ended before it could be killed: {process.communicate()}"
    os.killpg(process.pid, signal.SIGKILL)  # the search and its workers, as a scheduler or Ctrl-C would
    process.wait()
    rows_at_kill = read_history(out / "history.jsonl")
    assert 1 <= len(rows_at_kill) < N_ROWS

    resumed = cli_search(data_files, out, "--resume", "--parallel-children", workers)
    stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    rows = read_history(out / "history.jsonl")
    # Rows written before the kill stay as they were ('chosen' is only settled when an iteration closes).
    assert [r[:-1] for r in comparable(rows[:len(rows_at_kill)])] == [r[:-1] for r in comparable(rows_at_kill)]
    assert comparable(rows) == comparable(read_history(finished / "history.jsonl"))
    assert json.loads(stdout)["iterations_finished"] == SMALL["iterations"]


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_with_other_settings_is_refused_and_changes_nothing(data_files, finished):
    before = snapshot(finished)
    with pytest.raises(InputError) as err:
        run_search(data_files["train"], data_files["val"], finished, progress=False, resume=True,
                   **{**SMALL, "epochs": 3, "space": "dilated1d"})
    message = str(err.value)
    assert str(finished) in message and "epochs" in message and "space" in message
    assert snapshot(finished) == before


def test_non_empty_output_without_resume_is_refused(data_files, finished):
    with pytest.raises(InputError, match="--resume"):
        run_search(data_files["train"], data_files["val"], finished, progress=False, **SMALL)


# ---------------------------------------------------------------- bad inputs

def test_mismatched_train_and_val_files(tmp_path, capsys):
    from atacdenoise.cli import main

    train = write_pairs(tmp_path / "train.npz", synthetic_pairs(8, 1, ["chrA"]))
    other_window = write_pairs(tmp_path / "wide.npz", synthetic_pairs(8, 2, ["chrB"], window=1024, target=256))
    same_chrom = write_pairs(tmp_path / "overlap.npz", synthetic_pairs(8, 3, ["chrA"]))
    for val, problem in ((other_window, "window_bins"), (same_chrom, "chrA")):
        with pytest.raises(InputError) as err:
            check_compatible(load_pairs(train), load_pairs(val))
        assert str(train) in str(err.value) and str(val) in str(err.value) and problem in str(err.value)
    # Through the command: one line, exit status 2, nothing written.
    out = tmp_path / "out"
    assert main(["search", "--train", str(train), "--val", str(same_chrom), "--outdir", str(out), "--quiet"]) == 2
    assert "held out" in capsys.readouterr().err and not out.exists()


def test_nan_in_pairs_names_the_file(tmp_path):
    pairs = synthetic_pairs(8, 1, ["chrA"])
    pairs["targets"][3, 5] = np.nan
    path = write_pairs(tmp_path / "nan.npz", pairs)
    with pytest.raises(InputError, match="NaN") as err:
        load_pairs(path)
    assert err.value.path == str(path)


def test_validation_without_peaks_reports_undefined_auprc(data_files, tmp_path, caplog):
    val = write_pairs(tmp_path / "val.npz", synthetic_pairs(32, 5, ["chrB"], with_peaks=False))
    with caplog.at_level("WARNING", logger="atacdenoise"):
        summary = run_search(data_files["train"], val, tmp_path / "out", progress=False,
                             **{**SMALL, "iterations": 1, "children": 1, "initial_random_draws": 1})
    assert "validation windows contain no peak" in caplog.text
    rows = read_history(tmp_path / "out" / "history.jsonl")
    assert len(rows) == 3 and all(r["val_auprc"] is None and r["val_loss"] > 0 for r in rows)
    assert summary["best_val_auprc"] is None


# ---------------------------------------------------------------- pairs from tracks (tiny genome)

def tiny_genome(folder: Path, clean_values: dict[str, float]) -> tuple[Path, Path, Path, dict[str, int]]:
    """Insertions, a constant clean bigWig per chromosome and one peak, on two 20 kb chromosomes."""
    import pyBigWig

    sizes = {"chrA": 20_000, "chrB": 20_000}
    insertions = folder / "noisy.insertions.bed"
    insertions.write_text("".join(f"{c}\t{p}\t{p + 1}\t.\t0\t+\n"
                                  for c, p in (("chrA", 5000), ("chrA", 5000), ("chrA", 12_000), ("chrB", 3000))))
    bigwig = folder / "clean.bw"
    bw = pyBigWig.open(str(bigwig), "w")
    bw.addHeader(list(sizes.items()))
    for chrom, value in clean_values.items():
        bw.addEntries(chrom, [0], values=[value], span=sizes[chrom], step=sizes[chrom])
    bw.close()
    peaks = folder / "clean.peaks.bed"
    peaks.write_text("chrA\t5000\t5100\n")
    return insertions, bigwig, peaks, sizes


def centre_track(pairs: dict, key: str, depth: float) -> np.ndarray:
    """Stitch the tiled windows' centres back into one track (tiles come in genome order)."""
    chosen = pairs["depth"] == np.float32(depth)
    values = pairs[key][chosen]
    if key == "inputs":
        flank = (values.shape[1] - pairs["targets"].shape[1]) // 2
        values = values[:, flank:flank + pairs["targets"].shape[1]]
    return values.reshape(-1)


def test_make_pairs_scales_and_labels_exactly(tmp_path):
    from atacdenoise.tracks.depth import REFERENCE_DENSITY
    from atacdenoise.tracks.windows import WindowSpec

    insertions, bigwig, peaks, sizes = tiny_genome(tmp_path, {"chrA": 2.0, "chrB": 1.0})
    pairs = make_pairs(insertions, bigwig, peaks, sizes, ["chrA"], depths=(0.5, 1.0), n_windows=None,
                       spec=WindowSpec(64, 16), bin_size=25, seed=0)
    n_bins = 20_000 // 25
    assert pairs["inputs"].shape == (2 * n_bins // 16, 64)  # every 16-bin tile, once per depth
    # Targets: clean coverage rescaled from the clean library's density (total coverage / 201 bases per insertion,
    # over the 40 kb both chromosomes cover; no 100 kb block is a pile-up) to REFERENCE_DENSITY.
    clean_insertions = (2.0 * 20_000 + 1.0 * 20_000) / 201
    np.testing.assert_allclose(centre_track(pairs, "targets", 1.0),
                               2.0 * REFERENCE_DENSITY * 40_000 / clean_insertions, rtol=1e-6)
    # Peak labels: bins 200-203 hold chrA:5000-5100, nothing else.
    labels = centre_track(pairs, "peaks", 1.0)
    assert np.flatnonzero(labels).tolist() == [200, 201, 202, 203]
    # Inputs: the 3 chrA insertions x 201 bp, rescaled from the whole library's density (4 insertions over 40 kb,
    # chrB included).
    unit = REFERENCE_DENSITY * 40_000 / 4
    full = centre_track(pairs, "inputs", 1.0)
    assert full.sum() * 25 == pytest.approx(3 * 201 * unit, rel=1e-5)
    half = centre_track(pairs, "inputs", 0.5)
    kept = half.sum() * 25 / (201 * unit) * 0.5  # insertions kept at p = 0.5, each counted 1/p times
    assert kept == pytest.approx(round(kept), abs=1e-4) and 0 <= round(kept) <= 3
    with pytest.raises(InputError, match="overlap"):
        from atacdenoise.search.data import prepare
        prepare(insertions, bigwig, peaks, sizes, ["chrA"], ["chrA"], tmp_path / "out")


# ---------------------------------------------------------------- real pairs

@pytest.fixture(scope="module")
def hsc() -> Path:
    folder = SHARED_DATA / "hsc"
    if not (folder / "noisy_5M.tn5_insertions.bed.gz").exists():
        pytest.skip(f"real data not found at {folder} (see /work/shared/data/README.md)")
    return folder


@pytest.mark.realdata
def test_make_pairs_on_real_data_shapes_and_depth_scaling(hsc):
    from atacdenoise.io.chromsizes import read_chrom_sizes
    from atacdenoise.tracks.windows import WindowSpec

    sizes = read_chrom_sizes(hsc / "chrom.sizes")
    files = (hsc / "noisy_5M.tn5_insertions.bed.gz", hsc / "clean_80M.coverage.bw", hsc / "clean_80M.peaks.bed")
    sampled = make_pairs(*files, sizes, ["chr1"], n_windows=12, seed=1)
    assert sampled["inputs"].shape == (12, 4096) and sampled["targets"].shape == (12, 1024)
    assert sampled["peaks"].shape == (12, 1024) and set(np.unique(sampled["peaks"])) <= {0, 1}
    assert sorted(np.unique(sampled["depth"], return_counts=True)[1]) == [4, 4, 4]

    # Tiled: the same windows at every depth, so the 1/p scaling must make their means agree.
    tiled = make_pairs(*files, sizes, ["chr1"], n_windows=None, spec=WindowSpec(4096, 1024), seed=1)
    mean_input = {d: tiled["inputs"][tiled["depth"] == np.float32(d)].mean() for d in (0.1, 0.2, 1.0)}
    assert mean_input[0.1] == pytest.approx(mean_input[1.0], rel=0.2)
    assert mean_input[0.2] == pytest.approx(mean_input[1.0], rel=0.2)
    # Inputs and targets share the per-million scale: the libraries put the same share of reads on chr1.
    assert tiled["targets"][tiled["depth"] == 1.0].mean() == pytest.approx(mean_input[1.0], rel=0.25)
    assert tiled["peaks"].any() and not tiled["peaks"].all()
    assert tiled["meta"]["noisy_insertions"] == 13_388 + 17_232


@pytest.mark.realdata
def test_prepare_command_writes_compatible_files(hsc, tmp_path):
    from atacdenoise.cli import main

    argv = ["prepare", "--insertions", str(hsc / "noisy_5M.tn5_insertions.bed.gz"),
            "--clean-bigwig", str(hsc / "clean_80M.coverage.bw"), "--clean-peaks", str(hsc / "clean_80M.peaks.bed"),
            "--chrom-sizes", str(hsc / "chrom.sizes"), "--train-chroms", "chr1", "--val-chroms", "chr2",
            "--depths", "0.1,1.0", "--n-train", "10", "--window", "256", "--target", "64", "--outdir", str(tmp_path)]
    assert main(argv) == 0
    train, val = load_pairs(tmp_path / "train.npz"), load_pairs(tmp_path / "val.npz")
    check_compatible(train, val)
    assert train["inputs"].shape == (10, 256) and val["meta"]["tiled"] and val["meta"]["chroms"] == ["chr2"]
    assert len(val["inputs"]) == 2 * -(-400_000 // 64)  # every 64-bin tile of chr2, at both depths


def test_search_continues_from_an_initial_model(data_files, finished, tmp_path):
    """--initial-model: iteration 0 is the given model as it is; the climb goes on from it."""
    best = json.loads((finished / "summary.json").read_text())
    settings = {**SMALL, "iterations": 1}
    summary = run_search(data_files["train"], data_files["val"], tmp_path / "more", progress=False,
                         initial_model=finished, **settings)
    rows = read_history(tmp_path / "more" / "history.jsonl")
    assert rows[0]["morphisms"] == ["initial model"] and rows[0]["train_loss"] is None
    assert rows[0]["val_loss"] == pytest.approx(best["best_val_loss"], rel=1e-6)  # same weights, same data
    assert len(rows) == 1 + 1 + SMALL["children"]  # initial model, then parent + children
    assert summary["best_val_loss"] <= best["best_val_loss"] + 1e-9
    with pytest.raises(InputError, match="is a hilbert2d model but --space is dilated1d"):
        run_search(data_files["train"], data_files["val"], tmp_path / "other", progress=False,
                   initial_model=finished, **{**settings, "space": "dilated1d"})


# ---------------------------------------------------------------- mirrored training windows

def test_mirror_batch_reverses_chosen_windows_and_keeps_targets_aligned():
    pairs = synthetic_pairs(6, 7, ["chrA"])
    x, y, peaks = (torch.as_tensor(pairs[key].astype(np.float32)) for key in ("inputs", "targets", "peaks"))
    flip = torch.tensor([True, False, True, False, False, True])
    mx, my, mpeaks = candidate.mirror_batch(x, y, peaks, flip)
    assert torch.equal(mx[~flip], x[~flip]) and torch.equal(my[~flip], y[~flip])
    assert torch.equal(mx[flip], x[flip].flip(-1)) and torch.equal(mpeaks[flip], peaks[flip].flip(-1))
    # A reversed window is a real window: its target is still the smoothed centre of its input.
    flank = (WINDOW - TARGET) // 2
    smooth = np.stack([np.convolve(row, np.ones(9) / 9, mode="same") for row in mx.numpy()])
    np.testing.assert_allclose(my.numpy(), smooth[:, flank:flank + TARGET], rtol=1e-5, atol=1e-6)


def test_mirror_changes_training_and_is_recorded_in_the_settings(data_files, finished, tmp_path):
    plain = run_search(data_files["train"], data_files["val"], tmp_path / "plain", progress=False,
                       mirror=False, **{**SMALL, "iterations": 0})
    mirrored_rows = read_history(finished / "history.jsonl")[:SMALL["initial_random_draws"]]
    plain_rows = read_history(tmp_path / "plain" / "history.jsonl")
    assert [r["val_loss"] for r in plain_rows] != [r["val_loss"] for r in mirrored_rows]
    assert plain["settings"]["mirror"] is False


def test_checkpoint_from_before_mirror_resumes_only_without_it(data_files, finished, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(finished, old)
    checkpoint = old / "checkpoint" / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    state["settings"].pop("mirror")  # as written before the option existed: no mirroring
    torch.save(state, checkpoint)
    with pytest.raises(InputError, match=r"mirror \(saved False, now True\)"):
        run_search(data_files["train"], data_files["val"], old, progress=False, resume=True, **SMALL)
    summary = run_search(data_files["train"], data_files["val"], old, progress=False, resume=True,
                         mirror=False, **SMALL)
    assert summary["iterations_finished"] == SMALL["iterations"]


def test_mirror_needs_a_centred_target(tmp_path):
    train = write_pairs(tmp_path / "train.npz", synthetic_pairs(40, 1, ["chrA"], target=63))
    val = write_pairs(tmp_path / "val.npz", synthetic_pairs(20, 2, ["chrB"], target=63))
    with pytest.raises(InputError, match="odd number"):
        run_search(train, val, tmp_path / "out", progress=False, **{**SMALL, "space": "dilated1d"})


# ---------------------------------------------------------------- children in parallel

def test_children_trained_in_parallel_give_the_sequential_history(data_files, finished, tmp_path):
    """--parallel-children 2: worker processes, same candidates, same order, same numbers."""
    summary = run_search(data_files["train"], data_files["val"], tmp_path / "parallel", progress=False,
                         parallel_children=2, **SMALL)
    assert comparable(read_history(tmp_path / "parallel" / "history.jsonl")) == \
        comparable(read_history(finished / "history.jsonl"))
    assert summary["best_val_loss"] == json.loads((finished / "summary.json").read_text())["best_val_loss"]
    with pytest.raises(InputError, match="parallel children"):
        run_search(data_files["train"], data_files["val"], tmp_path / "zero", progress=False,
                   parallel_children=0, **SMALL)


def test_children_spread_over_devices_give_the_one_device_history(data_files, finished, tmp_path):
    """--devices cpu,cpu with 2 workers (each takes its device as it starts): the history of one device."""
    process = cli_search(data_files, tmp_path / "devices", "--devices", "cpu,cpu", "--parallel-children", "2")
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert comparable(read_history(tmp_path / "devices" / "history.jsonl")) == \
        comparable(read_history(finished / "history.jsonl"))
    assert json.loads(stdout)["best_val_loss"] == json.loads((finished / "summary.json").read_text())["best_val_loss"]


def test_devices_are_dealt_to_workers_in_turn_and_checked():
    from atacdenoise.cli import main
    from atacdenoise.search.workers import worker_devices

    assert worker_devices(3, ["cuda:0", "cuda:1"]) == ["cuda:0", "cuda:1", "cuda:0"]
    assert worker_devices(2, ["cpu"]) == ["cpu", "cpu"]
    assert nash.worker_device_list(["cpu", " cpu"], 2) == ["cpu", "cpu"]
    for bad in ("gpu", "cuda:x", ""):
        with pytest.raises(InputError, match="--device must be"):
            nash.worker_device_list(["cpu", bad], 2)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            nash.worker_device_list(["cuda:0", "cuda:1"], 2)
    with pytest.raises(SystemExit) as exit_:  # one of --device and --devices
        main(["search", "--train", "t", "--val", "v", "--outdir", "o", "--device", "cpu", "--devices", "cpu,cpu"])
    assert exit_.value.code == 2
