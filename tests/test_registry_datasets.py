"""Which data a registration logs as the model's training and validation datasets (no server needed)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from atacdenoise.registry.datasets import data_records, training_data_tag  # noqa: E402
from atacdenoise.registry.tracking import read_search  # noqa: E402
from atacdenoise.search.data import load_pairs  # noqa: E402
from atacdenoise.search.nash import fingerprint  # noqa: E402


@pytest.fixture()
def search(tmp_path):
    from test_registry import make_pairs, make_search_dir

    train, val = make_pairs(tmp_path / "train.npz", n=40, seed=1), make_pairs(tmp_path / "val.npz")
    other = make_pairs(tmp_path / "other.npz", n=12, seed=5)
    folder = make_search_dir(tmp_path / "search", train=train, val=val)
    return {"search": read_search(folder), "train": train, "val": val, "other": other}


def contexts(records) -> dict[str, tuple[str, str]]:
    return {r.context: (r.path, r.digest) for r in records}


def test_the_searchs_own_validation_data_is_logged_once_under_its_current_path(search, tmp_path):
    moved = tmp_path / "moved-val.npz"
    moved.write_bytes(search["val"].read_bytes())
    records = data_records(search["search"], moved, load_pairs(moved))
    assert contexts(records) == {"training": (str(search["train"].resolve()), fingerprint(load_pairs(search["train"]))),
                                 "validation": (str(moved), fingerprint(load_pairs(search["val"])))}
    assert training_data_tag(records) == str(search["train"].resolve())  # not the --data file


def test_other_pairs_are_the_parity_check_data_beside_the_searchs_validation_data(search):
    records = data_records(search["search"], search["other"], load_pairs(search["other"]))
    found = contexts(records)
    assert set(found) == {"training", "validation", "parity-check"}
    assert found["validation"][0] == str(search["val"].resolve())
    assert found["parity-check"] == (str(search["other"]), fingerprint(load_pairs(search["other"])))


def test_a_training_file_gone_since_the_search_keeps_its_digest_and_says_so(search):
    digest = fingerprint(load_pairs(search["train"]))
    search["train"].unlink()
    [training] = [r for r in data_records(search["search"], None, None) if r.context == "training"]
    assert training.digest == digest and training.profile["file_found_at_registration"] is False
    assert training.profile["sha256_at_registration"] is None
    json.dumps(training.profile)  # logged as MLflow's JSON profile


def test_without_a_search_the_pairs_are_the_validation_data_and_training_is_unknown(search):
    records = data_records(None, search["val"], load_pairs(search["val"]))
    assert [r.context for r in records] == ["validation"]
    assert training_data_tag(records).startswith("unknown")
