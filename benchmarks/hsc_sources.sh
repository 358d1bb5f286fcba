# Sourced by the HSC recipes (recipe_channel_models.sh, recipe_small_models.sh): the resampling sources every
# HSC channel model trains on, chr1 to train and chr2 to validate, once with the blacklist only (a mask, no
# channel) and once with TSS, CpG islands and CTCF sites as channels. (3 s each)
#
# Usage: prepare_hsc_sources COUNTS_DIR ANNOTATION_DIR   (HSC and ANN set to ../shared/data/hsc and its annotation/)
prepare_hsc_sources() {
    local data="--insertions $HSC/noisy_5M.tn5_insertions.bed.gz --clean-bigwig $HSC/clean_80M.coverage.bw
      --clean-peaks $HSC/clean_80M.peaks.bed --chrom-sizes $HSC/chrom.sizes --train-chroms chr1 --val-chroms chr2
      --depths 0.1,0.2,1.0 --n-train 6000 --regions $HSC/clean_80M.labelled_regions.bed --resample"
    atacdenoise prepare $data --annotation blacklist=$ANN/blacklist.bed --outdir "$1"
    atacdenoise prepare $data --annotation tss=$ANN/tss.bed --annotation cpg_islands=$ANN/cpg_islands.bed \
        --annotation ctcf_sites=$ANN/ctcf_sites.bed --annotation blacklist=$ANN/blacklist.bed --outdir "$2"
}
