"""IGV session files: one XML that opens every track of a sample, with colours and data ranges set.

Paths are written relative to the session file (IGV resolves them against
the session's folder), so a results folder can be moved or copied as a
whole. Only files that exist as plain files are referenced: a Nextflow task
stages its inputs as symlinks into a work folder that is not published, so
an input that is a symlink is left out rather than written as a path that
will not exist beside the published session.
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from atacdenoise.io.atomic import atomic_path

log = logging.getLogger(__name__)

# Colours (R,G,B) from the Okabe-Ito palette, distinct for colour-blind readers.
COLOURS = {"input": "153,153,153", "deep": "0,0,0", "denoised": "0,114,178", "peakprob": "230,159,0",
           "peaks": "213,94,0", "deep_peaks": "0,158,115"}
SIGNAL_CLASS = "org.broad.igv.track.DataSourceTrack"
FEATURE_CLASS = "org.broad.igv.track.FeatureTrack"
ALIGNMENT_CLASS = "org.broad.igv.sam.AlignmentTrack"


@dataclass
class IgvTrack:
    """One track: a file, its name in IGV, its colour, and for signals a fixed ``(min, max)`` or autoscale."""

    path: Path
    name: str
    colour: str
    data_range: tuple[float, float] | None = None  # None: autoscale
    visibility_window: int | None = None  # features: bases above which IGV stops drawing them (None: IGV's own)

    @property
    def kind(self) -> str:
        name = self.path.name.lower()
        if name.endswith((".bw", ".bigwig", ".bedgraph", ".bedgraph.gz")):
            return "signal"
        return "alignment" if name.endswith((".bam", ".cram")) else "feature"


def usable(path: str | os.PathLike | None) -> bool:
    """A plain file that a session beside the outputs can point to (not a staged symlink)."""
    if path is None:
        return False
    path = Path(path)
    if path.is_symlink():
        log.debug("%s is a symlink (a staged input?): left out of the IGV session", path)
        return False
    return path.is_file()


def write_igv_session(session: str | os.PathLike, tracks: list[IgvTrack], genome: str | os.PathLike | None = None,
                      locus: str = "All") -> Path:
    """Write an IGV (desktop, session version 8) XML listing ``tracks`` top to bottom, atomically.

    ``genome``: an IGV genome id (``hg38``) or a FASTA file (referenced relative to the session); absent,
    IGV keeps the genome it has loaded.
    """
    session = Path(session)
    folder = session.parent.resolve()
    root = ET.Element("Session", {"version": "8", "locus": locus, "hasGeneTrack": "true",
                                  "hasSequenceTrack": "true"})
    if genome is not None:
        root.set("genome", relative(genome, folder) if Path(genome).is_file() else str(genome))
    resources = ET.SubElement(root, "Resources")
    panel = ET.SubElement(root, "Panel", {"name": "DataPanel"})
    for track in tracks:
        path = relative(track.path, folder)
        ET.SubElement(resources, "Resource", {"path": path, "name": track.name})
        _track_element(panel, track, path)
    ET.indent(root)
    with atomic_path(session) as tmp:
        ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)
    return session


def relative(path: str | os.PathLike, folder: Path) -> str:
    """``path`` relative to ``folder``, with forward slashes (IGV reads them on every system)."""
    return Path(os.path.relpath(Path(path).resolve(), folder)).as_posix()


def _track_element(panel: ET.Element, track: IgvTrack, path: str) -> None:
    attributes = {"id": path, "name": track.name, "color": track.colour, "visible": "true", "fontSize": "10"}
    if track.kind == "signal":
        attributes.update({"clazz": SIGNAL_CLASS, "renderer": "BAR_CHART", "windowFunction": "mean",
                           "autoScale": str(track.data_range is None).lower(), "height": "60"})
        element = ET.SubElement(panel, "Track", attributes)
        low, high = track.data_range or (0.0, 1.0)
        ET.SubElement(element, "DataRange", {"type": "LINEAR", "baseline": "0.0", "minimum": str(low),
                                             "maximum": str(high), "drawBaseline": "true", "flipAxis": "false"})
    elif track.kind == "alignment":
        ET.SubElement(panel, "Track", {**attributes, "clazz": ALIGNMENT_CLASS, "displayMode": "SQUISHED"})
    else:
        if track.visibility_window:
            attributes["visibilityWindow"] = str(track.visibility_window)
        ET.SubElement(panel, "Track", {**attributes, "clazz": FEATURE_CLASS, "displayMode": "COLLAPSED",
                                       "height": "25"})


def denoise_session_tracks(outputs: dict[str, str], input_path=None, input_format: str | None = None
                           ) -> list[IgvTrack]:
    """The tracks of one denoised sample: its input when a browser can show it, then the denoised
    signal (autoscaled), the peak probability (0-1) and the peaks (bigBed when written, else narrowPeak)."""
    tracks = []
    if input_format in ("bigwig", "bam") and usable(input_path):
        tracks.append(IgvTrack(Path(input_path), "input", COLOURS["input"]))
    elif input_format == "insertions" and usable(input_path) and usable(f"{input_path}.tbi"):
        # one 1-bp feature per insertion: drawn only within 100 kb, where they can be told apart
        tracks.append(IgvTrack(Path(input_path), "input insertions", COLOURS["input"], visibility_window=100_000))
    tracks.append(IgvTrack(Path(outputs["denoised"]), "denoised", COLOURS["denoised"]))
    if "peakprob" in outputs:  # not with denoise --no-peakprob
        tracks.append(IgvTrack(Path(outputs["peakprob"]), "peak probability", COLOURS["peakprob"], (0.0, 1.0)))
    tracks.append(IgvTrack(Path(outputs.get("peaks_bigbed", outputs["peaks"])), "denoised peaks", COLOURS["peaks"]))
    return tracks
