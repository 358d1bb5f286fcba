"""Denoising networks (hilbert2d, dilated1d, AtacWorks baseline), their losses and morphisms.

Every model maps ``(N, window_bins)`` to ``(signal, peak_logits)``, each
``(N, target_bins)``; see ``common.py`` for units and ``morphisms.py`` for the
function-preserving edits the NASH search applies.
"""

from atacdenoise.models.common import Denoiser, count_parameters
from atacdenoise.models.spec import SPACES, build_model, default_config, random_initial_config

__all__ = ["Denoiser", "SPACES", "build_model", "count_parameters", "default_config", "random_initial_config"]
