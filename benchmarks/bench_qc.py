"""Benchmark: `atacdenoise qc` on the real libraries in ../shared/data; prints a markdown table.

Libraries (see ../shared/data/README.md):

- yeast: the deep S288C library (fragments), Ensembl R64 genes (GFF3 'gene' starts are ORF starts), FRiP
  against MACS3 peaks called on the library itself (`atacdenoise peaks`, ATAC settings, -g 1.2e7); once more
  with the 26 genes inside the chrXII rDNA repeat (440-490 kb, 36 % of all fragments) left out of the TSSs,
  and once with the repeat's fragments left out too.
- HSC 5M insertions (hg19, chr1/chr2 first 10 Mb): GENCODE TSSs (annotation/tss.bed), FRiP against the 80M
  library's MACS2 peaks.
- GM12878 BAM (hg19 chr1 subset): the same GENCODE TSSs (they cover the first 10 Mb of chr1 only).
- ENCODE keratinocyte BAM (hg38 chr19 + chrM, deduplicated): no annotation here, so no TSS enrichment.

    python benchmarks/bench_qc.py        # about a minute (MACS3 on the yeast library is most of it)
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
RDNA = ("chrXII", 440_000, 490_000)


def bam_sizes(path: Path) -> dict[str, int]:
    from atacdenoise.io.reads import bam_chrom_sizes

    return bam_chrom_sizes(path)


def without_rdna_genes(gff: Path, out: Path) -> Path:
    chrom, start, end = RDNA
    with gzip.open(gff, "rt") as src, open(out, "w") as dst:
        for line in src:
            fields = line.split("\t")
            if len(fields) > 4 and fields[0] == chrom and int(fields[3]) > start and int(fields[4]) < end:
                continue
            dst.write(line)
    return out


def fragments_outside_rdna(fragments: Path, out: Path) -> Path:
    chrom, start, end = RDNA
    with gzip.open(fragments, "rt") as src, open(out, "w") as dst:
        for line in src:
            fields = line.split("\t", 3)
            if not (fields[0] == chrom and int(fields[1]) > start and int(fields[2]) < end):
                dst.write(line)
    return out


def yeast_peaks(work: Path) -> Path:
    yeast = DATA / "yeast"
    prefix = work / "yeast"
    subprocess.run([sys.executable, "-m", "atacdenoise.cli", "peaks", "--input", str(yeast / "fragments.tsv.gz"),
                    "--chrom-sizes", str(yeast / "chrom.sizes"), "--genome-size", "1.2e7",
                    "--out-prefix", str(prefix)], check=True, capture_output=True)
    return Path(f"{prefix}.narrowPeak")


def libraries(work: Path) -> list[tuple[str, dict]]:
    from atacdenoise.io.chromsizes import read_chrom_sizes

    yeast, hsc, bam = DATA / "yeast", DATA / "hsc", DATA / "bam"
    yeast_sizes = read_chrom_sizes(yeast / "chrom.sizes")
    peaks = yeast_peaks(work)
    gm, encode = bam / "GM12878_chr1_subset.hg19.bam", bam / "ENCSR356KRQ_rep1.subsampled400.nodup.hg38.bam"
    return [
        ("yeast (fragments), Ensembl genes, own MACS3 peaks",
         dict(input_path=yeast / "fragments.tsv.gz", chrom_sizes=yeast_sizes, gtf=yeast / "genes.gff3.gz",
              peaks=peaks)),
        ("yeast, genes outside the chrXII rDNA repeat",
         dict(input_path=yeast / "fragments.tsv.gz", chrom_sizes=yeast_sizes,
              gtf=without_rdna_genes(yeast / "genes.gff3.gz", work / "genes_no_rdna.gff3"), peaks=peaks)),
        ("yeast fragments outside the rDNA repeat",
         dict(input_path=fragments_outside_rdna(yeast / "fragments.tsv.gz", work / "no_rdna.fragments.tsv"),
              chrom_sizes=yeast_sizes, gtf=work / "genes_no_rdna.gff3", peaks=peaks)),
        ("HSC 5M insertions, GENCODE TSS, 80M peaks",
         dict(input_path=hsc / "noisy_5M.tn5_insertions.bed.gz", chrom_sizes=read_chrom_sizes(hsc / "chrom.sizes"),
              gtf=hsc / "annotation" / "tss.bed", peaks=hsc / "clean_80M.peaks.bed")),
        ("GM12878 BAM (hg19 chr1), GENCODE TSS (first 10 Mb)",
         dict(input_path=gm, chrom_sizes=bam_sizes(gm), gtf=hsc / "annotation" / "tss.bed")),
        ("ENCODE keratinocyte BAM (hg38, nodup)", dict(input_path=encode, chrom_sizes=bam_sizes(encode))),
    ]


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    if not DATA.exists():
        print(f"real data folder {DATA} is absent", file=sys.stderr)
        return 2
    from atacdenoise.evaluate.qc import compute_qc

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kwargs in libraries(Path(tmp)):
            started = time.perf_counter()
            qc = compute_qc(**kwargs)
            rows.append((name, qc, time.perf_counter() - started))
    print("| library | insertions | chrM | duplicates | NRF | PBC1 | PBC2 | < 147 bp | mono peak (bp, over trough) "
          "| TSS enrichment (ENCODE) | centre / flanks | TSSs | FRiP | QC s |")
    print("| --- | " + " | ".join(["---:"] * 13) + " |")
    for name, qc, seconds in rows:
        dup = qc["fraction_duplicates"]
        method = {"d": "flag", "i": "coords"}.get(qc["duplicates_method"][:1], "")
        peak = (f"{qc['mononucleosome_peak_bp']}, {qc['mononucleosome_peak_over_trough']:.2f}"
                if qc.get("mononucleosome_peak_over_trough") is not None else "-")
        print(f"| {name} | {fmt(qc['n_insertions'])} | {fmt(qc['fraction_chrM'])} | "
              f"{fmt(dup)}{f' ({method})' if dup is not None else ''} | {fmt(qc['nrf'])} | {fmt(qc['pbc1'])} | "
              f"{fmt(qc['pbc2'], 1)} | {fmt(qc.get('fraction_nucleosome_free'))} | {peak} | "
              f"{fmt(qc.get('tss_enrichment'), 2)} | {fmt(qc.get('tss_enrichment_centre'), 2)} | "
              f"{fmt(qc.get('n_tss'))} | {fmt(qc.get('frip'))} | {seconds:.1f} |")
    print("\nDuplicates: 'flag' = reads flagged 0x400, 'coords' = fragments sharing both ends (no read is flagged, "
          "or a fragments file). '< 147 bp': fraction of fragments shorter than a nucleosome. 'mono peak': the "
          "highest point of the 21-bp smoothed length histogram in 160-300 bp over its lowest point between 100 bp "
          "and it: above 1 the nucleosome periodicity is visible. TSS enrichment: ENCODE's (10 bp bins over +-2 kb, "
          "maximum over the mean of the outer 100 bp); centre / flanks: the central 100 bp over the same flanks.")
    yeast = rows[0][1]
    import numpy as np

    smooth = np.convolve(yeast["tss_profile"], np.ones(51) / 51, mode="same")
    print(f"\nReading: the yeast library's TSS enrichment is {yeast['tss_enrichment']:.1f}, not the > 5 of "
          "mammalian ATAC (HSC above: the same code gives "
          f"{rows[3][1]['tss_enrichment']:.1f}). Its profile is the expected one (the nucleosome-free region peaks "
          f"{2000 - int(np.argmax(smooth))} bp upstream of the Ensembl 'gene' starts, which in yeast are ORF starts), "
          "but with a gene every ~2 kb the +-2 kb flanks are neighbouring promoters rather than background, and the "
          "rDNA repeat's pile-up lifts the profile of the genes inside it. Over the whole library the fragment "
          "lengths only flatten near 200 bp (a shoulder, no peak) because the rDNA repeat's fragments (36 %) "
          "swamp the rest; outside it a weak mono-nucleosome peak shows at "
          f"{rows[2][1]['mononucleosome_peak_bp']} bp ({rows[2][1]['mononucleosome_peak_over_trough']:.2f} x the "
          "trough before it), no di-nucleosome peak; GM12878's mono-nucleosome peak is clear. The GM12878 TSS enrichment is high partly because its "
          "subset leaves the flanks sparse (few insertions per TSS). Most of the yeast duplicates are the rDNA "
          f"repeat's (a collapsed repeat, so identical coordinates need not be PCR copies): outside it "
          f"{rows[2][1]['fraction_duplicates']:.3f}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
