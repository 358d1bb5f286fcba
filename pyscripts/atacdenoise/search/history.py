"""What a search leaves on disk beside the best model: history.jsonl, summary.json, search.png.

``history.jsonl`` has one line per candidate: ``iteration`` (0 is the seed's
random search for the initial model), ``child`` (0 is the parent in NASH
iterations), ``morphisms``, ``parameters``, ``train_loss``, ``val_loss``,
``val_pearson``, ``val_auprc`` (None when undefined), ``seconds``,
``is_parent`` and ``chosen`` (the candidate that became the next parent).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path


def write_json(path: str | os.PathLike, record) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")


def write_history(path: str | os.PathLike, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))


def read_history(path: str | os.PathLike) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def chosen_per_iteration(rows: list[dict]) -> list[dict]:
    """The chosen row of every finished iteration, in order."""
    return [row for row in rows if row["chosen"]]


def plot_search(path: str | os.PathLike, rows: list[dict]) -> None:
    """Two panels as the seed's Figures 7-8: best validation loss and model size per iteration."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    chosen = chosen_per_iteration(rows)
    fig, (loss_ax, size_ax) = plt.subplots(1, 2, figsize=(10, 4))
    tried = [row for row in rows if row["val_loss"] is not None and not row["is_parent"]]
    loss_ax.scatter([r["iteration"] for r in tried], [r["val_loss"] for r in tried], s=8, color="0.7",
                    label="candidates")
    loss_ax.plot([r["iteration"] for r in chosen], [r["val_loss"] for r in chosen], "o-", color="C0",
                 label="best (parent of next iteration)")
    loss_ax.set(xlabel="iteration (0 = random initial search)", ylabel="validation loss",
                title="Best validation loss per iteration")
    loss_ax.legend()
    size_ax.plot([r["iteration"] for r in chosen], [r["parameters"] for r in chosen], "o-", color="C1")
    size_ax.set(xlabel="iteration", ylabel="parameters", title="Size of the best model")
    for ax in (loss_ax, size_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def load_search_model(search_dir: str | os.PathLike):
    """The best model of a finished search: ``best_model.json`` (architecture) + ``best_model.pt`` (weights)."""
    import json

    import torch

    from atacdenoise.models import build_model

    search_dir = Path(search_dir)
    config_path, weights_path = search_dir / "best_model.json", search_dir / "best_model.pt"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise InputError(path, "missing: is this a finished search folder?")
    try:
        model = build_model(json.loads(config_path.read_text()))
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    except (ValueError, RuntimeError, KeyError, json.JSONDecodeError) as err:
        raise InputError(search_dir, f"cannot rebuild the best model ({type(err).__name__}: {err})") from None
    return model.eval()
