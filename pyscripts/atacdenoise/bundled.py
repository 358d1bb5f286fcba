"""Where the models shipped with atacdenoise lie, for a source checkout and for an installed wheel alike.

Their home is the repository's ``registry/models/`` (each ``.onnx`` beside its card ``.md``). A wheel cannot
reach that folder, so the build copies it into the package as ``atacdenoise/registry/models/`` (``setup.py``);
a source checkout or an editable install has no such copy and reads the repository's folder directly.
This module sits at the package's top, below every layer, since ``denoise`` and ``pipeline`` both ask.
"""
from pathlib import Path

PACKAGED_MODELS = Path(__file__).resolve().parent / "registry" / "models"
REPOSITORY_MODELS = Path(__file__).resolve().parents[2] / "registry" / "models"


def bundled_models_dir() -> Path:
    """The folder of bundled models: the wheel's copy when installed from one, else the repository's."""
    return PACKAGED_MODELS if PACKAGED_MODELS.is_dir() else REPOSITORY_MODELS
