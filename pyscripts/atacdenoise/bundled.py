"""Where the files shipped with atacdenoise lie, for a source checkout and for an installed wheel alike.

Their home is the repository, outside the package: the models in ``registry/models/`` (each ``.onnx`` beside its
card ``.md``) and the samplesheet's JSON schema in ``assets/``. A wheel cannot reach those folders, so the build
copies them into the package under the same relative paths (``setup.py``); a source checkout or an editable
install has no such copy and reads the repository's folders directly.
This module sits at the package's top, below every layer, since ``denoise``, ``pipeline`` and ``samplesheet`` ask.
"""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
REPOSITORY = PACKAGE.parents[1]
MODELS = "registry/models"
ASSETS = "assets"
PACKAGED_MODELS = PACKAGE / MODELS
REPOSITORY_MODELS = REPOSITORY / MODELS


def shipped_dir(relative: str) -> Path:
    """The repository folder ``relative`` as the wheel's copy when installed from one, else the repository's."""
    packaged = PACKAGE / relative
    return packaged if packaged.is_dir() else REPOSITORY / relative


def bundled_models_dir() -> Path:
    """The folder of bundled models."""
    return shipped_dir(MODELS)


def assets_dir() -> Path:
    """The folder of the samplesheet's JSON schema (``schema_input.json``, which main.nf reads too)."""
    return shipped_dir(ASSETS)
