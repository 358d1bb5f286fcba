"""``atacdenoise denoise``: shallow ATAC-seq in, denoised tracks and peaks out, with onnxruntime only.

First the model is made cheaper to run (``denoise.quantize``: an int8 trunk calibrated on the input, by
``precision``; ``denoise.fast_graph``: graph rewrites, each checked at load). Then per chromosome, in chunks
of ``batch_size * CHUNK_BATCHES`` windows (memory bounded by a chunk, not by the chromosome): insertions ->
coverage bins built exactly as the model's contract says (``denoise.inputs``: bin size, extension, depth
normalisation), for the chunk's windows and their flanks
only -> windows whose centres tile the chromosome -> batched onnxruntime ->
the chunk's bins straight into both bigWigs and the peak caller. Chunks
overlap by the window flank, so the result is bit for bit a whole-chromosome
run's (tests/test_denoise.py). The bigWig (and bedGraph) writers run on a
thread (``io.writer_thread``) while onnxruntime computes the next chunk. Outputs:

- ``PREFIX.denoised.bw``: denoised coverage per bin, in the model's
  ``signal_units`` (mean coverage of +-extend bp extended insertions per bin,
  rescaled to a library of 1 insertion per 20 bp, see ``tracks.depth``);
- ``PREFIX.peakprob.bw``: per-bin peak probability (0-1; not with ``peakprob=False``, which halves the writing);
- ``PREFIX.peaks.narrowPeak``: bins with probability >= threshold, merged
  across gaps of <= 1 bin (see :mod:`.peaks_from_prob`);
- ``PREFIX.peaks.bb``: the peaks as bigBed (none when there are no peaks);
- ``PREFIX.provenance.json``: the model (source, ONNX sha256, contract), the
  inputs, the library depth used for scaling, the windows run and skipped
  (``OnnxDenoiser.predict``) and the software versions;
- ``PREFIX.igv.xml``: an IGV session of the tracks above (``io.igv``);
- with ``bedgraph``: ``PREFIX.denoised.bedGraph.gz`` and ``PREFIX.peakprob.bedGraph.gz``.

The tracks store rounded values (:data:`STORED_VALUES`; ``exact_values`` keeps the model's float32 as it came):
their low bits are noise that zlib cannot pack, and dropping them halves the bigWigs. Peaks are called from the
unrounded probabilities.

A model with genome channels (contract ``channels``) also needs the files
they are rendered from (``--fasta``, ``--annotation NAME=FILE``): each
chunk's channels are rendered for its span as in training (``tracks.channels``)
and laid beside its counts; a FASTA is checked against the model's per-chromosome
MD5 first. Files the model does not read get a one-line note and are ignored.

Chromosomes without any insertion are left empty (bigWig readers see 0).
No torch is imported on this path.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import numpy as np

from atacdenoise.denoise.contract import naming_style
from atacdenoise.denoise.inputs import input_tracks
from atacdenoise.denoise.onnx_runner import OnnxDenoiser, load_denoiser
from atacdenoise.denoise.peaks_from_prob import PeakStream
from atacdenoise.denoise.quantize import INT8_FROM_BP
from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path, atomic_set
from atacdenoise.io.bedgraph import bedgraph_path
from atacdenoise.io.narrowpeak import read_blacklist, without_blacklisted

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "int8", "float32")
# What the tracks store: each denoised value with 10 of float32's 23 mantissa bits (relative error <= 2**-11, 0.05 %;
# int8 moves values more than that), each peak probability to 0.001. About half the bytes of the exact values
# (benchmarks/bench_genome_scale.py, bigWig sizes).
STORED_VALUES = {"denoised": {"mantissa_bits": 10, "relative_error_at_most": 2 ** -11},
                 "peakprob": {"decimals": 3}}
CHUNK_BATCHES = 8  # windows handed to onnxruntime per progress update = batch_size * CHUNK_BATCHES


def output_paths(out_prefix: str | os.PathLike, bedgraph: bool = False, peakprob: bool = True) -> dict[str, Path]:
    """The files one run writes as a set (the browser files follow them, see :func:`browser_files`)."""
    prefix = os.fspath(out_prefix)
    paths = {"denoised": Path(f"{prefix}.denoised.bw"), "peakprob": Path(f"{prefix}.peakprob.bw"),
             "peaks": Path(f"{prefix}.peaks.narrowPeak"), "provenance": Path(f"{prefix}.provenance.json")}
    if not peakprob:
        del paths["peakprob"]
    if bedgraph:
        paths |= {f"{key}_bedgraph": bedgraph_path(paths[key]) for key in ("denoised", "peakprob") if key in paths}
    return paths


def denoise(
    input: str | os.PathLike,
    model: str | os.PathLike,
    chrom_sizes: dict[str, int],
    out_prefix: str | os.PathLike,
    fmt: str = "auto",
    batch_size: int = 64,
    threads: int | None = None,
    genome: str | None = None,
    tracking_uri: str | None = None,
    threshold: float = 0.5,
    read_filter=None,
    progress: bool = True,
    fasta: str | os.PathLike | None = None,
    annotations: dict[str, str] | None = None,
    library_size: float | None = None,
    chroms: list[str] | None = None,
    bedgraph: bool = False,
    blacklist: str | os.PathLike | None = None,
    fast_graph: bool = True,
    precision: str = "auto",
    exact_values: bool = False,
    peakprob: bool = True,
) -> dict[str, str]:
    """Denoise ``input`` (BAM, insertions BED, fragments or bigWig) with ``model`` (.onnx, ``models:/NAME@ALIAS`` or
    a bundled model's name).

    ``library_size``: insertions of the whole library when ``input`` is a slice
    of it (the depth is then that over the whole nuclear genome of
    ``chrom_sizes``); by default it is measured on ``input`` (``tracks.depth``).
    ``chroms``: denoise only these (the depth is still that of the whole input; the others are left
    empty, and ``atacdenoise merge`` gathers such runs into one).
    ``bedgraph``: also write each bigWig as ``.bedGraph.gz``.
    ``blacklist``: a BED whose regions no called peak may overlap (the tracks keep their values there).
    ``fast_graph``: rewrite the model's graph to run cheaper (``denoise.fast_graph``: more bins per window, Conv1d
    as Conv2d; each checked at load); False runs it as exported.
    ``precision``: ``"int8"`` runs the trunk's Convs in int8, calibrated on windows of this input and used only
    when they agree with float32 on others (``denoise.quantize``: ~2.4x less model work, within 0.0009 of
    float32's Pearson and AUPRC on the HSC chr2 benchmark); ``"float32"`` runs the weights as exported;
    ``"auto"`` is int8 when the input's chromosomes hold >= 100 Mb (``quantize.INT8_FROM_BP``), else float32.
    ``exact_values``: store the model's float32 outputs unrounded (default: :data:`STORED_VALUES`).
    ``peakprob``: False writes no peak-probability track (the peaks are called from it all the same).
    Returns the output paths. Every mismatch between the model's contract
    and the input is an InputError raised before anything is written.
    """
    if batch_size < 1:
        raise InputError(None, f"batch size must be >= 1, got {batch_size}")
    if precision not in PRECISIONS:
        raise InputError(None, f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if not 0 < threshold < 1:
        raise InputError(None, f"peak threshold must lie in (0, 1), got {threshold}")
    unknown = [c for c in chroms or () if c not in chrom_sizes]
    if unknown:  # a typo, told before the input is read
        raise InputError(None, f"--chroms {', '.join(unknown)}: not in the chrom sizes")
    bad_regions = read_blacklist(blacklist, chrom_sizes) if blacklist else None
    denoiser = load_denoiser(model, tracking_uri, threads)
    check_contract(denoiser, input, chrom_sizes, genome)
    genome_name = genome
    # Calibration windows are taken in the depth pass, before the chromosomes with insertions are known: skipped
    # when even the whole genome is under auto's threshold.
    may_int8 = precision == "int8" or (precision == "auto" and sum(chrom_sizes.values()) >= INT8_FROM_BP)
    fmt, tracks = input_tracks(input, fmt, chrom_sizes, denoiser.contract, read_filter, library_size, chroms,
                               calibrate=may_int8)
    int8 = may_int8 and (precision == "int8" or sum(chrom_sizes[c] for c in tracks.input_order) >= INT8_FROM_BP)
    # int8 calibrates on windows of every input chromosome, so their channels are rendered too.
    genome = model_genome(denoiser, {c: chrom_sizes[c] for c in (tracks.input_order if int8 else tracks.order)},
                          fasta, annotations or {})
    if int8:
        use_int8(denoiser, tracks, genome)
    if fast_graph:
        denoiser.optimise()
    inputs = {"input": os.fspath(input), "format": fmt, "chroms": tracks.order, "input_chroms": tracks.input_order,
              "fasta": fasta and os.fspath(fasta),
              "annotations": {name: os.fspath(path) for name, path in (annotations or {}).items()}, "threshold": threshold}
    stored = "exact" if exact_values else STORED_VALUES
    paths = output_paths(out_prefix, bedgraph, peakprob)
    with atomic_set() as temporary:  # the files of this run, or none of them
        write_outputs(denoiser, tracks, {key: temporary(path) for key, path in paths.items()}, batch_size,
                      threshold, progress, genome, bad_regions, stored)
        write_provenance(temporary(paths["provenance"]), denoiser, tracks.depth, inputs, stored)
    remove_stale_outputs(out_prefix, paths)
    outputs = {key: str(path) for key, path in paths.items()}
    return outputs | browser_files(outputs, chrom_sizes, input, fmt, fasta, genome_name)


def remove_stale_outputs(out_prefix, written: dict[str, Path]) -> None:
    """Remove the files of an earlier run at ``out_prefix`` that this run did not write (its peak probability or
    bedGraphs): left beside the new set, they would pass for part of it (``merge`` gathers what is there)."""
    for key, path in output_paths(out_prefix, bedgraph=True).items():
        if key not in written and path.exists():
            path.unlink()
            log.warning("note: removed %s, from an earlier run at this prefix (this run writes none)", path)


def use_int8(denoiser: OnnxDenoiser, tracks, genome) -> None:
    """Run the int8 trunk calibrated on ``tracks``' calibration windows when it agrees with float32 there: the
    even spread ones and the densest calibrate, the odd spread ones check."""
    def stack(windows):
        return np.stack([bins if genome is None else np.concatenate([bins[None], genome.render(chrom, (
            start, start + bins.size))]) for chrom, start, bins in windows])

    spread, densest = tracks.calibration_windows()
    if len(spread) < 2:
        log.warning("note: no chromosome with insertions holds a whole %d-bin window to calibrate int8 on: "
                    "float32 is used", denoiser.contract.window_bins)
        return
    denoiser.quantize(stack(spread[::2] + densest), stack(spread[1::2]))


def browser_files(outputs: dict[str, str], chrom_sizes: dict[str, int], input=None, fmt: str | None = None,
                  fasta=None, genome_name: str | None = None) -> dict[str, str]:
    """What genome browsers take, made from the finished set: the peaks as bigBed (none without peaks) and
    ``PREFIX.igv.xml``, a session of the input (when a browser shows it), denoised signal, peak probability
    and peaks. Its genome is the FASTA when IGV can open it there (a plain file, uncompressed or indexed),
    else ``--genome``'s name."""
    from atacdenoise.io.bigbed import write_narrowpeak_bigbed
    from atacdenoise.io.igv import denoise_session_tracks, usable, write_igv_session

    bigbed = write_narrowpeak_bigbed(outputs["peaks"], chrom_sizes)
    extra = {} if bigbed is None else {"peaks_bigbed": str(bigbed)}
    prefix = outputs["provenance"].removesuffix(".provenance.json")
    browsable = usable(fasta) and (not str(fasta).endswith(".gz") or Path(f"{fasta}.fai").exists())
    tracks = denoise_session_tracks(outputs | extra, input, fmt)
    extra["igv_session"] = str(write_igv_session(f"{prefix}.igv.xml", tracks, fasta if browsable else genome_name))
    return extra


def write_provenance(path, denoiser: OnnxDenoiser, depth, inputs: dict, stored_values="exact") -> None:
    """What made these tracks, as JSON beside them: enough to tell two runs apart and to rerun one."""
    import dataclasses
    from importlib.metadata import version

    from atacdenoise import __version__

    record = {"model": denoiser.source, "onnx_sha256": denoiser.sha256,
              "contract": dataclasses.asdict(denoiser.contract), "inputs": inputs, "library": depth.to_dict(),
              "windows": {"run": denoiser.windows_run, "skipped_constant": denoiser.windows_skipped},
              "graph": {"rewrites": denoiser.rewrites, "bins_predicted_per_window": denoiser.target_bins,
                        "precision": denoiser.precision},
              "stored_values": stored_values,
              "software": {"atacdenoise": __version__, "onnxruntime": version("onnxruntime"),
                           "numpy": np.__version__}}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n")


def model_genome(denoiser: OnnxDenoiser, chrom_sizes: dict[str, int], fasta, annotations: dict[str, str]):
    """The model's genome channels rendered from the user's files (None for a counts-only model).

    Refuses a missing channel file or a FASTA that differs from the training
    sequence; notes (and ignores) files the model does not use.
    """
    from atacdenoise.tracks.channels import GenomeChannels

    c = denoiser.contract
    specs = c.channel_specs
    used = {spec.name for spec in specs}
    for name in sorted(set(annotations) - used):
        why = "a blacklist only keeps training targets out" if name == "blacklist" else "not one of its channels"
        log.warning("note: model %s does not use annotation %r (%s); ignored", denoiser.source, name, why)
    if fasta is not None and not any(spec.needs_fasta for spec in specs):
        log.warning("note: model %s does not read the DNA sequence; --fasta ignored", denoiser.source)
        fasta = None
    if not specs:
        return None
    wanted = {name: path for name, path in annotations.items() if name in used}
    genome = GenomeChannels(specs, chrom_sizes, c.bin_size, wanted, fasta, model=denoiser.source)
    if fasta is not None:
        genome.check_md5(json.loads(c.sequence_md5), chrom_sizes, denoiser.source)
    return genome


def check_contract(denoiser: OnnxDenoiser, input, chrom_sizes: dict[str, int], genome: str | None) -> None:
    c = denoiser.contract
    if genome and c.genome not in ("unknown", genome):
        raise InputError(denoiser.source, f"model was trained on genome {c.genome!r} but --genome is {genome!r}")
    style = naming_style(chrom_sizes)
    if style != c.chrom_naming:
        like = {"chr": "'chr1'", "plain": "'1'"}
        raise InputError(input, f"chromosomes are named like {like[style]} but model {denoiser.source} was "
                                f"trained on names like {like[c.chrom_naming]}; rename them (chrom sizes and input)")
    if c.input_normalisation == "cpm":
        raise InputError(denoiser.source, "model scales its input per million insertions of the file, which depends "
                                          "on how much of the genome the file covers; re-export it with this version "
                                          "(density normalisation, see tracks/depth.py)")
    if c.input_normalisation != "density" or c.representation != "coverage":
        raise InputError(denoiser.source, f"unsupported model input: representation {c.representation!r}, "
                                          f"normalisation {c.input_normalisation!r}")


def write_outputs(denoiser: OnnxDenoiser, tracks, paths: dict[str, Path], batch_size: int, threshold: float,
                  progress: bool, genome=None, blacklist: dict | None = None, stored_values="exact") -> None:
    """The denoised and peak-probability bigWigs (and bedGraphs when ``paths`` has them) and the peaks, at
    ``paths`` (keys of :func:`output_paths`); the tracks hold values as ``stored_values`` says (``"exact"`` or
    the form of :data:`STORED_VALUES`)."""
    from contextlib import ExitStack

    from tqdm import tqdm

    from atacdenoise.io.narrowpeak import write_narrowpeak
    from atacdenoise.io.writer_thread import WriterThread

    c = denoiser.contract
    # Header order = the order chromosomes are produced in; the others follow (empty).
    sizes = {chrom: tracks.chrom_sizes[chrom] for chrom in tracks.order}
    sizes.update({chrom: n for chrom, n in tracks.chrom_sizes.items() if chrom not in sizes})
    n_windows = sum(math.ceil(math.ceil(sizes[chrom] / c.bin_size) / denoiser.target_bins) for chrom in tracks.order)
    all_peaks = []
    with tqdm(total=n_windows, unit="window", desc="denoise", disable=not progress) as bar, ExitStack() as stack:
        denoised, peakprob = (track_writers(stack, paths[key], sizes, c.bin_size, paths.get(f"{key}_bedgraph"))
                              if key in paths else None for key in ("denoised", "peakprob"))
        peaks_tmp = stack.enter_context(atomic_path(paths["peaks"]))
        writing = stack.enter_context(WriterThread())  # left (drained) before the writers close
        for chrom, n_bins, read_bins in tracks:
            channels = None if genome is None else lambda lo, hi, chrom=chrom: genome.render(chrom, (lo, hi))
            peaks = PeakStream(chrom, c.bin_size, sizes[chrom], threshold)
            for first_bin, signal, prob in denoise_chunks(denoiser, read_bins, n_bins, batch_size, bar.update,
                                                          channels):
                writing.submit(denoised.add, chrom, first_bin, stored(signal, stored_values, "denoised"))
                if peakprob is not None:
                    writing.submit(peakprob.add, chrom, first_bin, stored(prob, stored_values, "peakprob"))
                peaks.add(prob)
            called = peaks.finish()
            all_peaks.append(called if blacklist is None else without_blacklisted(called, blacklist))
        write_narrowpeak(peaks_tmp, all_peaks, name_prefix="denoised_peak")
    log.info("model run on %d windows; %d more skipped (whole batches of one constant input, e.g. no insertion: "
             "its output computed once)", denoiser.windows_run, denoiser.windows_skipped)


def stored(values: np.ndarray, stored_values, track: str) -> np.ndarray:
    """``values`` of ``track`` as the tracks store them (see :data:`STORED_VALUES`)."""
    if stored_values == "exact":
        return values
    from atacdenoise.io.bigwig import round_significant

    how = stored_values[track]
    if "mantissa_bits" in how:
        return round_significant(values, how["mantissa_bits"])
    return np.round(values, how["decimals"])


def track_writers(stack, bigwig, chrom_sizes: dict[str, int], bin_size: int, bedgraph=None):
    """A bigWig writer, and a bedGraph writer at ``bedgraph`` beside it when given, entered on ``stack``."""
    from atacdenoise.io.bedgraph import BedGraphWriter, TrackWriters
    from atacdenoise.io.bigwig import BigWigWriter

    writers = [stack.enter_context(BigWigWriter(bigwig, chrom_sizes, bin_size))]
    if bedgraph is not None:
        writers.append(stack.enter_context(BedGraphWriter(bedgraph, chrom_sizes, bin_size)))
    return TrackWriters(*writers)


def denoise_chunks(denoiser: OnnxDenoiser, read_bins, n_bins: int, batch_size: int = 64,
                   on_windows=lambda n: None, read_channels=None, chunk_windows: int | None = None):
    """Yield ``(first_bin, denoised signal, peak probability)`` for consecutive chunks of one chromosome.

    ``read_bins(lo, hi)`` gives the model-unit input bins ``[lo, hi)``; each
    chunk of ``chunk_windows`` windows (default ``batch_size * CHUNK_BATCHES``, fewer for a widened model)
    reads its windows' span (targets plus flanks) and pads past the
    chromosome ends with zeros, so windows, batches and outputs are those of
    the whole chromosome at once. ``read_channels(lo, hi)``: the ``(F, hi - lo)``
    genome channels of those bins, read for each chunk's span the same way
    (counts-only models have none).
    """
    from atacdenoise.tracks.windows import WindowSpec, extract, extract_channels, tile_starts

    c = denoiser.contract
    target_bins = denoiser.target_bins  # the contract's, or more after optimise
    starts = tile_starts(n_bins, WindowSpec(c.window_bins, target_bins))
    # A widened model predicts ~3.5x the bins per window: fewer batches per chunk keep a chunk's bins (and the
    # memory of the chunks in flight to the writers) what they were.
    chunk = chunk_windows or batch_size * max(1, round(CHUNK_BATCHES * c.target_bins / target_bins))
    for first in range(0, len(starts), chunk):
        chunk_starts = starts[first:first + chunk]
        lo, hi = max(int(chunk_starts[0]), 0), min(int(chunk_starts[-1]) + c.window_bins, n_bins)
        windows = extract(read_bins(lo, hi), chunk_starts - lo, c.window_bins)
        if read_channels is not None:
            channels = extract_channels(read_channels(lo, hi), chunk_starts - lo, c.window_bins)
            windows = np.concatenate([windows[:, None], channels], axis=1)
        signal, prob = denoiser.predict(windows, batch_size)
        first_bin = first * target_bins
        n = min(len(chunk_starts) * target_bins, n_bins - first_bin)
        yield first_bin, signal.ravel()[:n], prob.ravel()[:n]
        on_windows(len(chunk_starts))

