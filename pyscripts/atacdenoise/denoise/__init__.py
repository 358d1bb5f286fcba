"""Denoise a shallow ATAC-seq library with an exported ONNX model (onnxruntime only, no torch).

- :mod:`.contract`: the model's input/output contract, stored in the ONNX metadata;
- :mod:`.onnx_runner`: load ``.onnx`` or ``models:/NAME@ALIAS`` and run batches;
- :mod:`.peaks_from_prob`: peaks from the per-bin peak probability;
- :mod:`.run`: the whole-genome driver, chromosome by chromosome.
"""

from pathlib import Path

from atacdenoise.denoise.run import denoise
from atacdenoise.errors import InputError

# The model the project trained with its own search on ../shared/data/hsc (see its card beside it).
BUNDLED_MODEL = Path(__file__).resolve().parents[3] / "registry" / "models" / "atac-denoiser.onnx"


def bundled_model() -> str:
    """Path of the default model shipped in registry/models/."""
    if not BUNDLED_MODEL.is_file():
        raise InputError(BUNDLED_MODEL, "bundled default model not found; pass --model PATH.onnx or models:/NAME@ALIAS")
    return str(BUNDLED_MODEL)


__all__ = ["denoise", "bundled_model", "BUNDLED_MODEL"]
