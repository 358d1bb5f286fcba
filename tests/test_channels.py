"""Genome channels: FASTA and annotation reading, per-bin renderings, the models' extra inputs, denoise with them.

FASTA, GFF3 and BED fixtures are written here (small, synthetic); the real
HSC annotation and yeast genome are read in tests that skip without them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pyBigWig
import pytest

from atacdenoise.denoise.contract import ModelContract
from atacdenoise.errors import InputError
from atacdenoise.io import genome as genome_io
from atacdenoise.io.genome import Intervals, iter_sequence_bins, read_intervals
from atacdenoise.tracks.channels import (
    ChannelSpec, GenomeChannels, decay_bins, overlap_bins, parse_annotation_args, plan_channels,
)

SIZES = {"chr1": 3_010, "chr2": 1_000}


def random_sequence(rng, length: int) -> str:
    seq = "".join(rng.choice(list("ACGTacgt"), length))
    return seq[:100] + "NNNNN" + seq[105:]


def write_fasta(path: Path, records: dict[str, str], gz: bool = False, width: int = 60) -> Path:
    text = "".join(f">{name} description\n" + "".join(seq[i:i + width] + "\n" for i in range(0, len(seq), width))
                   for name, seq in records.items())
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture(scope="module")
def sequences():
    rng = np.random.default_rng(3)
    return {chrom: random_sequence(rng, length) for chrom, length in SIZES.items()}


# ---------------------------------------------------------------- FASTA

@pytest.mark.parametrize("gz", [False, True])
def test_sequence_bins_count_every_base_and_match_sam_m5(tmp_path, sequences, monkeypatch, gz):
    monkeypatch.setattr(genome_io, "CHUNK_BASES", 100)  # many chunks: CpGs across chunk edges must still count
    fasta = write_fasta(tmp_path / ("g.fa.gz" if gz else "g.fa"), sequences, gz=gz)
    found = {b.chrom: b for b in iter_sequence_bins(fasta, 25)}
    assert list(found) == list(SIZES)
    for chrom, seq in sequences.items():
        bins = found[chrom]
        upper = seq.upper()
        assert bins.md5 == hashlib.md5(upper.encode()).hexdigest()
        assert bins.length == len(seq)
        for b in (0, 4, (len(seq) - 1) // 25):  # includes the N run and the (partial) last bin
            piece = upper[b * 25:(b + 1) * 25]
            expected = [sum(piece.count(x) for x in "GC"), sum(piece.count(x) for x in "AT"), piece.count("N"),
                        sum(upper[i:i + 2] == "CG" for i in range(b * 25, min((b + 1) * 25, len(seq))))]
            assert bins.counts[:, b].tolist() == expected


def test_fasta_problems_are_one_line_errors(tmp_path, sequences):
    wrong_names = write_fasta(tmp_path / "plain.fa", {"1": sequences["chr1"], "2": sequences["chr2"]})
    with pytest.raises(InputError, match="'chr1'"):
        GenomeChannels([ChannelSpec("sequence", "gc_fraction")], SIZES, 25, fasta=wrong_names)
    lacking = write_fasta(tmp_path / "lacking.fa", {"chr1": sequences["chr1"]})
    with pytest.raises(InputError, match="lacks chromosome chr2"):
        GenomeChannels([ChannelSpec("sequence", "gc_fraction")], SIZES, 25, fasta=lacking)
    other = write_fasta(tmp_path / "other.fa", {"chr1": sequences["chr1"][:-10], "chr2": sequences["chr2"]})
    with pytest.raises(InputError, match="another assembly"):
        GenomeChannels([ChannelSpec("sequence", "gc_fraction")], SIZES, 25, fasta=other)
    not_fasta = tmp_path / "x.fa"
    not_fasta.write_text("ACGT\n")
    with pytest.raises(InputError, match="not a FASTA"):
        list(iter_sequence_bins(not_fasta, 25))


def test_sequence_features_and_md5_check(tmp_path, sequences):
    fasta = write_fasta(tmp_path / "g.fa.gz", sequences, gz=True)
    specs = plan_channels({}, sequence="fixed")
    genome = GenomeChannels(specs, SIZES, 25, fasta=fasta)
    rendered = genome.render("chr1")
    assert rendered.shape == (3, 121) and rendered.dtype == np.float32
    assert 0.3 < rendered[0].mean() < 0.7                          # GC fraction of a random sequence
    assert rendered[2, 4] == pytest.approx(5 / 25)                  # the NNNNN run lies in bin 4
    assert rendered[2, 120] == 0 and (rendered <= 1).all() and (rendered >= 0).all()
    genome.check_md5(genome.md5, SIZES)
    with pytest.raises(InputError, match="chr2 differs"):
        genome.check_md5({**genome.md5, "chr2": "0" * 32}, SIZES, "m.onnx")


# ---------------------------------------------------------------- annotation

def brute_overlap(intervals: list[tuple[int, int]], length: int, bin_size: int) -> np.ndarray:
    mask = np.zeros(-(-length // bin_size) * bin_size, bool)
    for s, e in intervals:
        mask[s:e] = True
    return mask.reshape(-1, bin_size).mean(axis=1)


def as_intervals(rows, strands=None) -> Intervals:
    rows = sorted(rows)
    return Intervals(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                     np.array(strands or [0] * len(rows)))


def test_overlap_fraction_matches_a_per_base_count():
    rng = np.random.default_rng(1)
    starts = rng.integers(0, 5_000, 40)
    rows = [(int(s), int(s + rng.integers(1, 300))) for s in starts]  # overlapping and nested intervals
    got = overlap_bins(as_intervals(rows), 201, 25)
    np.testing.assert_allclose(got, brute_overlap(rows, 5_025, 25), atol=1e-6)
    assert not overlap_bins(None, 10, 25).any()


def test_tss_decay_uses_gene_starts_by_strand():
    plus_minus = as_intervals([(1_000, 2_000), (5_000, 9_000)], strands=[1, -1])  # TSSs at 1000 and 8999
    decay = decay_bins(plus_minus, 400, 25, 1_000)
    centres = (np.arange(400) + 0.5) * 25
    expected = np.exp(-np.minimum(np.abs(centres - 1_000), np.abs(centres - 8_999)) / 1_000)
    np.testing.assert_allclose(decay, expected, rtol=1e-6)
    assert decay[39] == pytest.approx(np.exp(-12.5 / 1_000), rel=1e-6)          # plus strand: the gene's start
    assert decay[359] == pytest.approx(np.exp(-11.5 / 1_000), rel=1e-6)         # minus strand: its end
    assert decay[200] < 0.02


def test_gff3_and_gtf_gene_records(tmp_path):
    gff = tmp_path / "genes.gff3.gz"
    with gzip.open(gff, "wt") as fh:
        fh.write("##gff-version 3\n"
                 "chr1\tsgd\tgene\t101\t500\t.\t+\t.\tID=gene:A\n"
                 "chr1\tsgd\tmRNA\t101\t500\t.\t+\t.\tID=tx:A\n"
                 "chr1\tsgd\tgene\t1001\t2000\t.\t-\t.\tID=gene:B\n"
                 "chrX\tsgd\tgene\t1\t10\t.\t+\t.\tID=gene:C\n")  # another chromosome: ignored
    genes = read_intervals(gff, SIZES, genes_only=True)
    assert list(genes) == ["chr1"]
    assert genome_io.tss_positions(genes["chr1"]).tolist() == [100, 1999]
    no_genes = tmp_path / "tx.gtf"
    no_genes.write_text('chr1\tsrc\ttranscript\t1\t100\t.\t+\t.\tgene_id "A";\n')
    with pytest.raises(InputError, match="no 'gene' records"):
        read_intervals(no_genes, SIZES, genes_only=True)


def test_annotation_from_another_genome_is_refused(tmp_path):
    beyond = tmp_path / "cpg.bed"
    beyond.write_text("chr1\t10\t20\nchr2\t900\t1200\n")
    with pytest.raises(InputError, match="line 2: chr2:901-1200 ends beyond chr2's 1,000 bp"):
        read_intervals(beyond, SIZES)
    plain = tmp_path / "plain.bed"
    plain.write_text("1\t10\t20\n")
    with pytest.raises(InputError, match="annotation names chromosomes like '1'"):
        read_intervals(plain, SIZES)


def test_annotation_arguments_and_channel_plan(tmp_path):
    bed = tmp_path / "a.bed"
    bed.write_text("chr1\t10\t20\n")
    given = parse_annotation_args([f"tss={bed}", f"blacklist={bed}", f"enhancers={bed}"])
    specs = plan_channels(given, sequence=None)
    assert [(s.name, s.render) for s in specs] == [("tss", "decay"), ("enhancers", "overlap")]
    for bad in ("tss", "=x.bed", "sequence=x.fa"):
        with pytest.raises(InputError):
            parse_annotation_args([bad])
    with pytest.raises(InputError, match="given twice"):
        parse_annotation_args([f"tss={bed}", f"tss={bed}"])
    with pytest.raises(InputError, match="needs annotation channel 'ctcf_sites'.*--annotation ctcf_sites=FILE"):
        GenomeChannels([ChannelSpec("ctcf_sites", "overlap")], SIZES, 25, annotations={"tss": bed}, model="m.onnx")
    with pytest.raises(InputError, match="--fasta"):
        GenomeChannels([ChannelSpec("sequence", "gc_fraction")], SIZES, 25)


def test_blacklist_masks_bins_and_user_bigwig_channel(tmp_path):
    blacklist = tmp_path / "bl.bed"
    blacklist.write_text("chr1\t100\t130\n")
    track = tmp_path / "user.bw"
    with pyBigWig.open(str(track), "w") as bw:
        bw.addHeader(list(SIZES.items()))
        bw.addEntries(["chr1"], [0], ends=[50], values=[3.0])
    genome = GenomeChannels(plan_channels({"mine": track}, None), SIZES, 25,
                            annotations={"mine": track, "blacklist": blacklist})
    assert genome.blacklist_bins("chr1").nonzero()[0].tolist() == [4, 5]
    rendered = genome.render("chr1")
    assert rendered.shape == (1, 121)
    assert rendered[0, :2] == pytest.approx(np.log1p(3.0)) and rendered[0, 2] == 0


# ---------------------------------------------------------------- models

@pytest.mark.parametrize("space", ["dilated1d", "hilbert2d"])
def test_added_genome_channels_preserve_the_function_then_learn(space):
    import torch

    from atacdenoise.models import build_model
    from atacdenoise.models import dilated1d, hilbert2d
    from atacdenoise.models.morphisms import add_input_channels

    torch.manual_seed(0)
    config = (dilated1d.make_config(8, 5, [dilated1d.residual_layer(5, 2)], 256, 64) if space == "dilated1d" else
              hilbert2d.make_config([hilbert2d.conv_layer(4, 3), hilbert2d.conv_layer(4, 3, concat=0),
                                     hilbert2d.dense_layer(16)], 256, 64))
    model = build_model(config).eval()
    counts = torch.rand(3, 256) * 5
    genome = torch.rand(3, 2, 256)
    wider = add_input_channels(model, 2).eval()
    assert wider.input_channels == 3 and wider.to_config()["input_channels"] == 3
    with torch.no_grad():
        before = model(counts)
        after = wider(torch.cat([counts[:, None], genome], dim=1))
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    first = wider.stem if space == "dilated1d" else wider.blocks[0].conv
    with torch.no_grad():
        first.weight[:, 1:] += 0.5  # the new channels are live inputs once their weights move
        moved = wider(torch.cat([counts[:, None], genome], dim=1))
    assert not torch.allclose(moved[0], before[0])
    assert build_model(wider.to_config()).input_channels == 3


def test_mirrored_batches_flip_genome_channels_with_the_signal():
    import torch

    from atacdenoise.search.candidate import mirror_batch

    inputs = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)
    targets = torch.arange(2 * 4, dtype=torch.float32).reshape(2, 4)
    x, y, _ = mirror_batch(inputs, targets, targets.clone(), torch.tensor([True, False]))
    torch.testing.assert_close(x[0], inputs[0].flip(-1))
    torch.testing.assert_close(x[1], inputs[1])
    torch.testing.assert_close(y[0], targets[0].flip(-1))


# ---------------------------------------------------------------- contract and denoise

def test_contract_records_channels_and_reads_older_files():
    spec = ChannelSpec("tss", "decay", 1000)
    contract = ModelContract(space="dilated1d", channels=json.dumps([spec.to_dict()]),
                             sequence_md5=json.dumps({"chr1": "a" * 32}), masks='["blacklist"]')
    back = ModelContract.from_metadata(contract.to_metadata())
    assert back.channel_specs == [spec] and back.input_channels == 2
    older = {k: v for k, v in contract.to_metadata().items()
             if k not in ("atacdenoise.channels", "atacdenoise.sequence_md5", "atacdenoise.masks")}
    assert ModelContract.from_metadata(older).input_channels == 1


def channel_sum_model(path: Path, contract: ModelContract) -> Path:
    """ONNX graph over (N, 2, W): signal = counts + channel 1 at the centre, peak_logits = channel 1 - 0.5."""
    import onnx
    from onnx import TensorProto, helper

    flank, target = contract.flank, contract.target_bins
    const = lambda name, values: helper.make_tensor(name, TensorProto.INT64, [len(values)], values)  # noqa: E731
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["centre"]),
             helper.make_node("ReduceSum", ["centre", "channel_axis"], ["signal"], keepdims=0),
             helper.make_node("Slice", ["x", "c1_starts", "c1_ends", "c1_axes"], ["channel1"]),
             helper.make_node("Squeeze", ["channel1", "channel_axis"], ["c1"]),
             helper.make_node("Sub", ["c1", "half"], ["peak_logits"])]
    graph = helper.make_graph(
        nodes, "channel-sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, contract.window_bins])],
        [helper.make_tensor_value_info("signal", TensorProto.FLOAT, ["batch", target]),
         helper.make_tensor_value_info("peak_logits", TensorProto.FLOAT, ["batch", target])],
        initializer=[const("starts", [flank]), const("ends", [flank + target]), const("axes", [2]),
                     const("channel_axis", [1]), const("c1_starts", [1, flank]),
                     const("c1_ends", [2, flank + target]), const("c1_axes", [1, 2]),
                     helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, contract.to_metadata())
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def channel_denoise(tmp_path_factory):
    from test_denoise import write_insertions

    root = tmp_path_factory.mktemp("channels")
    sizes = {"chr1": 180_000, "chr2": 95_010}
    contract = ModelContract(space="test-channels", window_bins=256, target_bins=64,
                             channels=json.dumps([ChannelSpec("tss", "decay", 1000).to_dict()]))
    tss = root / "tss.bed"
    tss.write_text("chr1\t5000\t5001\tA\t0\t+\nchr1\t120000\t120001\tB\t0\t-\nchr2\t40000\t40001\tC\t0\t+\n")
    write_insertions(root / "ins.bed.gz", sizes, 2000)
    return {"root": root, "sizes": sizes, "tss": tss, "insertions": root / "ins.bed.gz",
            "model": channel_sum_model(root / "channels.onnx", contract)}


def test_denoise_lays_rendered_channels_beside_the_counts(channel_denoise, caplog):
    from atacdenoise.denoise import denoise
    from atacdenoise.io.reads import iter_insertions
    from atacdenoise.tracks.binning import coverage_bins
    from atacdenoise.tracks.depth import REFERENCE_DENSITY

    w = channel_denoise
    with caplog.at_level(logging.WARNING):
        out = denoise(w["insertions"], w["model"], w["sizes"], w["root"] / "out", progress=False,
                      annotations={"tss": w["tss"], "cpg_islands": w["tss"]}, exact_values=True)
    assert "does not use annotation 'cpg_islands'" in caplog.text
    positions = dict(iter_insertions(w["insertions"], w["sizes"]))
    total = sum(len(p) for p in positions.values())
    genome = GenomeChannels([ChannelSpec("tss", "decay", 1000)], w["sizes"], 25, annotations={"tss": w["tss"]})
    with pyBigWig.open(out["denoised"]) as bw, pyBigWig.open(out["peakprob"]) as pp:
        for chrom, length in w["sizes"].items():
            counts = coverage_bins(positions[chrom], length, 25, 100, "mean", scale=REFERENCE_DENSITY * sum(w["sizes"].values()) / total)
            channel = genome.render(chrom)[0]
            got = np.array(bw.values(chrom, 0, length))[::25][:len(counts)]
            np.testing.assert_allclose(got, counts + channel, rtol=1e-5, atol=1e-5)
            prob = np.array(pp.values(chrom, 0, length))[::25][:len(counts)]
            np.testing.assert_allclose(prob, 1 / (1 + np.exp(-(channel - 0.5))), rtol=1e-5, atol=1e-6)


def test_denoise_refuses_a_missing_channel_file_and_writes_nothing(channel_denoise):
    from atacdenoise.denoise import denoise

    w = channel_denoise
    with pytest.raises(InputError, match="needs annotation channel 'tss'"):
        denoise(w["insertions"], w["model"], w["sizes"], w["root"] / "missing", progress=False)
    assert not list(w["root"].glob("missing*"))


# ---------------------------------------------------------------- training data

def test_prepare_with_genome_channels_and_blacklist(tmp_path):
    from test_denoise import write_insertions

    from atacdenoise.search.data import make_pairs
    from atacdenoise.search.resample import build_source
    from atacdenoise.tracks.windows import WindowSpec

    sizes = {"chr1": 200_000, "chr2": 100_000}
    noisy = write_insertions(tmp_path / "noisy.bed.gz", sizes, 3000, seed=1)
    clean = write_insertions(tmp_path / "clean.bed.gz", sizes, 30000, seed=2)
    bw_path = tmp_path / "clean.bw"
    from atacdenoise.tracks.binning import coverage_bins
    with pyBigWig.open(str(bw_path), "w") as bw:
        bw.addHeader(list(sizes.items()))
        for chrom, length in sizes.items():
            bins = coverage_bins(clean[chrom], length, 25, 100, "mean")
            bw.addEntries(chrom, 0, values=bins.astype(float).tolist(), span=25, step=25)
    peaks = tmp_path / "peaks.bed"
    peaks.write_text("chr1\t1000\t2000\nchr2\t5000\t6000\n")
    annotation = tmp_path / "cpg.bed"
    annotation.write_text("chr1\t10000\t12000\nchr2\t20000\t21000\n")
    blacklist = tmp_path / "bl.bed"
    blacklist.write_text("chr2\t50000\t50100\n")
    annotations = {"cpg_islands": annotation, "blacklist": blacklist}
    genome = GenomeChannels(plan_channels(annotations, None), sizes, 25, annotations=annotations)
    spec = WindowSpec(256, 64)
    pairs = make_pairs(tmp_path / "noisy.bed.gz", bw_path, peaks, sizes, ["chr2"], (1.0,), None, spec, genome=genome)
    assert pairs["inputs"].shape[1:] == (2, 256)
    assert pairs["meta"]["channels"] == [{"name": "cpg_islands", "render": "overlap", "scale_bp": 0, "width": 1}]
    assert pairs["meta"]["masks"] == ["blacklist"]
    target_bins = pairs["start"][:, None] + spec.flank + np.arange(64)
    assert not np.isin(target_bins, [2000, 2001, 2002, 2003]).any()  # no target touches the blacklist
    np.testing.assert_allclose(pairs["inputs"][:, 1], np.stack(
        [np.pad(genome.render("chr2")[0], 256)[s + 256:s + 512] for s in pairs["start"]]))
    source = build_source(((c, clean[c]) for c in sizes), peaks, sizes, ["chr1", "chr2"], 3000 * 2 + 2000,
                          (0.5, 1.0), None, spec, genome=genome)
    draw = source.draw(32, 0)
    assert draw["inputs"].shape == (32, 2, 256)
    for chrom, start in zip(draw["chrom"], draw["start"]):  # drawn targets avoid the blacklist too
        assert chrom != "chr2" or not start + spec.flank <= 2003 < start + spec.flank + 64 + 4


# ---------------------------------------------------------------- learned sequence tower

def test_base_codes_render_each_bins_bases(tmp_path, sequences):
    fasta = write_fasta(tmp_path / "g.fa", sequences)
    specs = plan_channels({}, "learned", bin_size=25)
    assert [(s.render, s.width) for s in specs] == [("base_codes", 25)]
    genome = GenomeChannels(specs, SIZES, 25, fasta=fasta)
    codes = genome.render("chr1")
    assert codes.shape == (25, 121)
    code_of = {"A": 1, "C": 2, "G": 3, "T": 4, "N": 0}
    seq = sequences["chr1"].upper()
    for b in (0, 4, 120):
        expected = [code_of[base] for base in seq[b * 25:(b + 1) * 25]]
        assert codes[:len(expected), b].tolist() == expected
    assert not codes[10:, 120].any()  # past the chromosome end: 0 (as N)


def test_mirroring_reverse_complements_base_codes():
    import torch

    from atacdenoise.search.candidate import mirror_batch

    # One window, 2 bins of 3 bases: bin 0 = "ACG", bin 1 = "TNA"; plus a signal channel.
    codes = torch.tensor([[1.0, 4.0], [2.0, 0.0], [3.0, 1.0]])
    inputs = torch.cat([torch.tensor([[[5.0, 7.0]]]), codes[None]], dim=1)
    target = torch.zeros(1, 2)
    x, _, _ = mirror_batch(inputs, target, target, torch.tensor([True]), slice(1, 4))
    assert x[0, 0].tolist() == [7.0, 5.0]
    # reverse strand: reverse complement of "ACGTNA" is "TNACGT": bins "TNA", "CGT"
    assert x[0, 1:].T.tolist() == [[4.0, 0.0, 1.0], [2.0, 3.0, 4.0]]


def test_sequence_tower_model_trains_exports_and_starts_from_counts(tmp_path):
    import torch

    from atacdenoise.models import build_model, dilated1d
    from atacdenoise.models.morphisms import add_input_channels, dilated_deepen
    from atacdenoise.registry.onnx_export import export_onnx
    from atacdenoise.tracks.channels import model_inputs

    channels = [ChannelSpec("sequence", "gc_fraction").to_dict(), ChannelSpec("sequence", "base_codes", width=25).to_dict()]
    inputs = model_inputs(channels)
    assert inputs == {"input_channels": 27, "sequence_tower": {"first": 2, "width": 25, "filters": 8}}
    torch.manual_seed(0)
    counts_only = build_model(dilated1d.make_config(8, 5, [dilated1d.residual_layer(5, 2)], 256, 64)).eval()
    x = torch.cat([torch.rand(3, 1, 256) * 4, torch.rand(3, 1, 256), torch.randint(0, 5, (3, 25, 256)).float()], 1)
    model = add_input_channels(counts_only, 26, inputs["sequence_tower"]).eval()
    assert model.encoder.out_channels == 1 + 1 + 8
    with torch.no_grad():
        for a, b in zip(model(x), counts_only(x[:, 0])):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        deeper = dilated_deepen(model, np.random.default_rng(0)).eval()  # morphisms keep the tower's weights
        for a, b in zip(deeper(x), model(x)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        model.stem.weight[:, 2:] += 0.3
        changed = model(x)[0]
        swapped = x.clone()
        swapped[:, 2:] = torch.where(x[:, 2:] > 0, 5 - x[:, 2:], x[:, 2:])  # other bases, same counts
        assert not torch.allclose(model(swapped)[0], changed)  # the sequence is read
    contract = ModelContract(space="dilated1d", window_bins=256, target_bins=64, channels=json.dumps(channels))
    report = export_onnx(model, tmp_path / "tower.onnx", contract=contract, check_windows=x.numpy())
    assert report.passed


def test_cli_names_the_missing_channel_in_one_line(channel_denoise, capsys):
    from atacdenoise.cli import main

    w = channel_denoise
    sizes = w["root"] / "chrom.sizes"
    sizes.write_text("".join(f"{c}\t{n}\n" for c, n in w["sizes"].items()))
    code = main(["denoise", "--input", str(w["insertions"]), "--model", str(w["model"]), "--chrom-sizes", str(sizes),
                 "--out-prefix", str(w["root"] / "cli"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "needs annotation channel 'tss'" in err[0] and str(w["model"]) in err[0]
    assert not list(w["root"].glob("cli*"))
    code = main(["denoise", "--input", str(w["insertions"]), "--model", str(w["model"]), "--chrom-sizes", str(sizes),
                 "--out-prefix", str(w["root"] / "cli"), "--quiet", "--annotation", "tss"])
    assert code == 2 and "NAME=FILE" in capsys.readouterr().err


# ---------------------------------------------------------------- the real genomes

@pytest.mark.realdata
def test_real_yeast_genome_and_genes(shared_data, tmp_path):
    """The S288C reference (gzip, not bgzip, in a read-only folder) streams; its M5 and gene starts are right."""
    yeast = shared_data / "yeast"
    sizes = {c: n for c, n in (line.split() for line in (yeast / "chrom.sizes").read_text().splitlines())}
    sizes = {"chrI": int(sizes["chrI"]), "chrIII": int(sizes["chrIII"])}
    genome = GenomeChannels(plan_channels({"tss": yeast / "genes.gff3.gz"}, "fixed"), sizes, 25,
                            annotations={"tss": yeast / "genes.gff3.gz"}, fasta=yeast / "genome.fa.gz",
                            scratch=tmp_path)
    with gzip.open(yeast / "genome.fa.gz", "rt") as fh:
        text = fh.read()
    chr1 = text.split(">chrI\n", 1)[1].split(">", 1)[0].replace("\n", "").upper()
    assert genome.md5["chrI"] == hashlib.md5(chr1.encode()).hexdigest()
    rendered = genome.render("chrI")
    assert rendered.shape == (4, -(-sizes["chrI"] // 25))
    assert 0.35 < rendered[0].mean() < 0.42                       # yeast is ~38 % GC
    assert rendered[3].max() == pytest.approx(1.0, abs=0.02)      # a bin at a gene start
    genes = read_intervals(yeast / "genes.gff3.gz", sizes, genes_only=True)
    assert len(genes["chrI"].starts) > 50


@pytest.mark.realdata
def test_real_hsc_annotation_renders(shared_data):
    annotation = shared_data / "hsc" / "annotation"
    sizes = {"chr1": 10_000_000, "chr2": 10_000_000}
    files = {name: annotation / f"{name}.bed" for name in ("tss", "cpg_islands", "ctcf_sites", "blacklist")}
    genome = GenomeChannels(plan_channels(files, None), sizes, 25, annotations=files)
    rendered = genome.render("chr2")
    assert rendered.shape == (3, 400_000)
    covered = (rendered[1:] > 0).mean(axis=1)
    assert 0.001 < covered[0] < 0.05 and 0.001 < covered[1] < 0.05  # CpG islands and CTCF sites are sparse
    assert genome.blacklist_bins("chr1")[:100].all()                # chr1:0-845,200 is blacklisted


def test_default_model_falls_back_to_counts_only_without_its_annotation(channel_denoise, monkeypatch, caplog):
    import atacdenoise.denoise as denoise_package

    w = channel_denoise
    counts_only = w["root"] / "counts.onnx"
    counts_only.write_bytes(b"placeholder: only its path is returned")
    monkeypatch.setattr(denoise_package, "BUNDLED_MODEL", w["model"])
    monkeypatch.setattr(denoise_package, "BUNDLED_COUNTS_MODEL", counts_only)
    assert denoise_package.bundled_model({"tss": w["tss"]}) == str(w["model"])
    with caplog.at_level(logging.WARNING):
        assert denoise_package.bundled_model({"cpg_islands": w["tss"]}) == str(counts_only)
    assert "--annotation tss=FILE" in caplog.text and "counts-only" in caplog.text
    monkeypatch.setattr(denoise_package, "BUNDLED_COUNTS_MODEL", w["root"] / "absent.onnx")
    assert denoise_package.bundled_model({}) == str(w["model"])  # no fallback shipped: denoise names the file


# ---------------------------------------------------------------- chunked rendering (denoise's bounded memory)

def test_every_rendering_of_a_bin_range_equals_the_whole_chromosomes(tmp_path, sequences):
    """``render(chrom, (lo, hi))`` == ``render(chrom)[:, lo:hi]`` for sequence features, base codes, TSS decay,
    overlap and a user's bigWig, for ranges at the start, inside, across and at the (partial) last bin."""
    fasta = write_fasta(tmp_path / "g.fa", sequences)
    tss, sites, track = tmp_path / "tss.bed", tmp_path / "sites.bed", tmp_path / "user.bw"
    tss.write_text("chr1\t400\t401\tA\t0\t+\nchr1\t2500\t2501\tB\t0\t-\nchr2\t10\t11\tC\t0\t+\n")
    sites.write_text("chr1\t90\t130\nchr1\t110\t460\nchr1\t2990\t3010\n")
    with pyBigWig.open(str(track), "w") as bw:
        bw.addHeader(list(SIZES.items()))
        bw.addEntries(["chr1", "chr1"], [0, 1000], ends=[50, 2013], values=[3.0, 0.5])
    files = {"tss": tss, "ctcf_sites": sites, "mine": track}
    genome = GenomeChannels(plan_channels(files, "both"), SIZES, 25, annotations=files, fasta=fasta)
    assert genome.n_channels == 3 + 25 + 3
    whole = genome.render("chr1")
    for lo, hi in [(0, 1), (0, 7), (3, 50), (17, 121), (120, 121), (0, 121)]:
        np.testing.assert_array_equal(genome.render("chr1", (lo, hi)), whole[:, lo:hi], err_msg=f"{lo}-{hi}")


@pytest.mark.realdata
def test_chunked_channels_denoise_like_whole_chromosome_channels(shared_data, tmp_path):
    """The bundled yeast model (sequence features, base codes, TSS) over chrI (9 windows) in chunks of 2 windows,
    each rendering only its span's channels, == its windows cut from the whole chromosome's channels, bit for bit."""
    from atacdenoise.denoise.onnx_runner import OnnxDenoiser
    from atacdenoise.denoise.run import denoise_chunks
    from atacdenoise.io.reads import iter_insertions
    from atacdenoise.tracks.binning import coverage_bins
    from atacdenoise.tracks.windows import WindowSpec, extract, extract_channels, tile_starts

    yeast = shared_data / "yeast"
    denoiser = OnnxDenoiser(Path(__file__).resolve().parents[1] / "registry" / "models" / "atac-denoiser-sacCer3.onnx",
                            threads=2)
    c = denoiser.contract
    sizes = {"chrI": 230_218}
    genome = GenomeChannels(c.channel_specs, sizes, c.bin_size, {"tss": yeast / "genes.gff3.gz"},
                            yeast / "genome.fa.gz", scratch=tmp_path)
    positions = np.sort(dict(iter_insertions(yeast / "fragments.tsv.gz", sizes, "fragments"))["chrI"])
    counts = coverage_bins(positions, sizes["chrI"], c.bin_size, c.extend, c.stat, scale=1.0)
    starts = tile_starts(len(counts), WindowSpec(c.window_bins, c.target_bins))
    windows = np.concatenate([extract(counts, starts, c.window_bins)[:, None],
                              extract_channels(genome.render("chrI"), starts, c.window_bins)], axis=1)
    signal, prob = denoiser.predict(windows, batch_size=2)

    read = lambda lo, hi: counts[lo:hi]  # noqa: E731
    chunks = list(denoise_chunks(denoiser, read, len(counts), batch_size=2, chunk_windows=2,
                                 read_channels=lambda lo, hi: genome.render("chrI", (lo, hi))))
    assert len(starts) == 9 and len(chunks) == 5
    np.testing.assert_array_equal(np.concatenate([s for _, s, _ in chunks]), signal.ravel()[:len(counts)])
    np.testing.assert_array_equal(np.concatenate([p for _, _, p in chunks]), prob.ravel()[:len(counts)])
