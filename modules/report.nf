// REPORT: one self-contained HTML page per denoised sample: summary (peaks called, agreement with the
// shallow input), provenance (model sha256, the library depth denoise scaled by) and genome-browser panels at the strongest peaks and at random loci. Options such as
// --chroms, --n-strong, --n-random, --locus-bp, --seed come from task.ext.args (see `atacdenoise report --help`);
// truth tracks, baselines, the search folder and the model card are for runs outside this process.
process REPORT {
    tag "$meta.id"
    label 'process_low'
    container "${params.container_prefix}/qc:${params.container_tag}"

    input:
    tuple val(meta), path(denoised), path(peakprob), path(peaks), path(provenance), path(noisy)
    path chrom_sizes

    output:
    tuple val(meta), path("${prefix}.report.html"), emit: html
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    atac-report --denoised ${denoised} --peakprob ${peakprob} --peaks ${peaks} --provenance ${provenance} --noisy ${noisy} --chrom-sizes ${chrom_sizes} --output ${prefix}.report.html ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.report.html versions.yml
    """
}
