"""Denoise a shallow ATAC-seq library with an exported ONNX model (onnxruntime only, no torch).

- :mod:`.contract`: the model's input/output contract, stored in the ONNX metadata;
- :mod:`.onnx_runner`: load ``.onnx`` or ``models:/NAME@ALIAS`` and run batches;
- :mod:`.peaks_from_prob`: peaks from the per-bin peak probability;
- :mod:`.run`: the whole-genome driver, chromosome by chromosome.
"""

import logging

from atacdenoise.denoise.run import denoise
from atacdenoise.errors import InputError
from atacdenoise.bundled import bundled_models_dir

# The models the project trained on ../shared/data/hsc (hg19; see the cards beside them): the default
# reads annotation channels, the counts-only one serves when their files are not given.
MODELS = bundled_models_dir()
BUNDLED_MODEL = MODELS / "atac-denoiser.onnx"
BUNDLED_COUNTS_MODEL = MODELS / "atac-denoiser-counts.onnx"


def bundled_model(annotations: dict | None = None, fasta=None) -> str:
    """Path of the default model shipped with the package (see :mod:`atacdenoise.bundled`).

    When the default reads genome channels whose files are not among
    ``annotations`` / ``fasta``, the bundled counts-only model is used instead,
    with a note naming the files that would select the default (an explicit
    ``--model`` with missing files is an error instead: see ``denoise``).
    """
    from atacdenoise.denoise.onnx_runner import OnnxDenoiser

    if not BUNDLED_MODEL.is_file():
        raise InputError(BUNDLED_MODEL, "bundled default model not found; pass --model PATH.onnx or models:/NAME@ALIAS")
    specs = OnnxDenoiser(BUNDLED_MODEL, threads=1).contract.channel_specs
    missing = [spec.name for spec in specs
               if (fasta is None if spec.needs_fasta else spec.name not in (annotations or {}))]
    if missing and BUNDLED_COUNTS_MODEL.is_file():
        logging.getLogger(__name__).warning(
            "note: the default model reads %s; without %s the counts-only model %s is used (the files and where to "
            "get them: %s)", ", ".join(spec.name for spec in specs),
            " ".join(f"--annotation {name}=FILE" for name in missing), BUNDLED_COUNTS_MODEL.name,
            BUNDLED_MODEL.with_suffix(".md"))
        return str(BUNDLED_COUNTS_MODEL)
    return str(BUNDLED_MODEL)


__all__ = ["denoise", "bundled_model", "BUNDLED_MODEL", "BUNDLED_COUNTS_MODEL"]
