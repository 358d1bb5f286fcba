"""Reading and writing: BAM, insertions BED, fragments, bigWig, narrowPeak, chrom sizes."""
