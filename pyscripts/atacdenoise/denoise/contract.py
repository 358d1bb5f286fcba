"""The ONNX model contract: what a denoiser expects and produces, stored in the ONNX file itself.

The exporter writes these fields as ONNX ``metadata_props``; ``denoise`` reads
them back and builds its input exactly as the model was trained. The file is
the one source of truth, so a model never meets input binned another way.

Input (``x``, float32 ``(N, window_bins)``, or ``(N, 1 + len(channels),
window_bins)`` for a model with genome channels): per ``bin_size`` bin, the mean
coverage of insertions extended +-``extend`` bp, rescaled from the library's
density (insertions per base of nuclear sequence) to ``reference_density``
(``input_normalisation = "density"``, :mod:`atacdenoise.tracks.depth`), as
``search/data.py`` builds training windows. (``"cpm"``, per million insertions
of the file, is what models exported before it carry; denoise refuses them.) ``channels`` (JSON list of
``tracks.channels.ChannelSpec`` dicts) says what channels 1.. hold and how each
is rendered; ``sequence_md5`` (JSON ``{chrom: M5}``) the reference sequence a
model that reads DNA was trained on; ``masks`` (JSON list) is ``["blacklist"]``
when blacklisted bins were kept out of the training targets.

Outputs: ``signal`` (``(N, target_bins)``, denoised coverage in the units of the
clean training track: mean coverage of +-``extend`` bp extended insertions per
bin, rescaled the same way) and ``peak_logits`` (sigmoid -> per-bin
peak probability).

This module must not import torch: the inference container has none.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

from atacdenoise.errors import InputError
from atacdenoise.tracks.depth import REFERENCE_DENSITY

CONTRACT_FORMAT = "atacdenoise-onnx/1"
NORMALISATIONS = ("density", "cpm", "none")
NAMING_STYLES = ("chr", "plain")
OPTIONAL_FIELDS = ("channels", "sequence_md5", "masks", "reference_density")
SIGNAL_UNITS = ("mean coverage of +-extend bp extended insertions per bin, rescaled to a library of "
                "reference_density insertions per base")


@dataclass(frozen=True)
class ModelContract:
    space: str
    window_bins: int = 4096
    target_bins: int = 1024
    bin_size: int = 25
    representation: str = "coverage"
    extend: int = 100
    stat: str = "mean"
    input_normalisation: str = "density"
    reference_density: float = REFERENCE_DENSITY
    genome: str = "unknown"
    chrom_naming: str = "chr"
    signal_units: str = SIGNAL_UNITS
    peak_output: str = "logits"
    channels: str = "[]"
    sequence_md5: str = "{}"
    masks: str = "[]"
    format: str = CONTRACT_FORMAT

    def __post_init__(self):
        # Checked here so that both writing and reading refuse a contract denoise cannot honour.
        if self.input_normalisation not in NORMALISATIONS:
            raise ValueError(f"input_normalisation must be one of {NORMALISATIONS}, got {self.input_normalisation!r}")
        if self.chrom_naming not in NAMING_STYLES:
            raise ValueError(f"chrom_naming must be one of {NAMING_STYLES}, got {self.chrom_naming!r}")
        for name in ("window_bins", "target_bins", "bin_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.extend < 0:
            raise ValueError(f"extend must be >= 0, got {self.extend}")
        try:
            channels = json.loads(self.channels)
        except ValueError:
            channels = None
        if not isinstance(channels, list) or not all(isinstance(c, dict) for c in channels):
            raise ValueError(f"channels must be a JSON list of channel specs, got {self.channels[:80]!r}")
        if self.target_bins > self.window_bins or (self.window_bins - self.target_bins) % 2:
            raise ValueError(f"target_bins {self.target_bins} must be centred in window_bins {self.window_bins}")

    @property
    def flank(self) -> int:
        return (self.window_bins - self.target_bins) // 2

    @property
    def channel_specs(self) -> list:
        from atacdenoise.tracks.channels import ChannelSpec

        return [ChannelSpec(**spec) for spec in json.loads(self.channels)]

    @property
    def input_channels(self) -> int:
        from atacdenoise.tracks.channels import channel_count

        return 1 + channel_count(json.loads(self.channels))

    def to_metadata(self) -> dict[str, str]:
        """ONNX ``metadata_props`` are strings; prefix keys so they never clash with others."""
        return {f"atacdenoise.{key}": str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], path: str | os.PathLike | None = None) -> "ModelContract":
        values = {k.removeprefix("atacdenoise."): v for k, v in metadata.items() if k.startswith("atacdenoise.")}
        if values.get("format") != CONTRACT_FORMAT:
            raise InputError(path, f"ONNX file carries no atacdenoise contract (expected metadata format "
                                   f"{CONTRACT_FORMAT!r}, found {values.get('format')!r}); export it with "
                                   f"'atacdenoise registry register'")
        kwargs = {}
        for field in fields(cls):
            if field.name in OPTIONAL_FIELDS and field.name not in values:
                continue  # written by older versions: no genome channels
            if field.name not in values:
                raise InputError(path, f"ONNX metadata lacks atacdenoise.{field.name}")
            kind = {"int": int, "float": float}.get(field.type, str)
            try:
                kwargs[field.name] = kind(values[field.name])
            except ValueError:
                raise InputError(path, f"ONNX metadata atacdenoise.{field.name} is {values[field.name]!r}, "
                                       f"not {'an integer' if kind is int else 'a number'}") from None
        try:
            return cls(**kwargs)
        except ValueError as err:
            raise InputError(path, f"ONNX metadata: {err}") from None


def naming_style(chrom_names) -> str:
    """'chr' when the chromosomes are named like 'chr1', 'plain' when like '1'."""
    names = list(chrom_names)
    return "chr" if sum(n.startswith("chr") for n in names) * 2 >= len(names) else "plain"
