// WINDOWS: training and validation windows (noisy input at several depths, clean target, peak labels).
// With --resample in ext.args (the default, params.resample), train.npz is a resampling source: the search
// thins the deep insertions afresh every epoch.
process WINDOWS {
    tag "$meta.id"
    label 'process_medium'
    container "${params.container_prefix}/tracks:${params.container_tag}"

    input:
    tuple val(meta), path(insertions), path(clean_bigwig), path(clean_peaks)
    path chrom_sizes

    output:
    tuple val(meta), path("${prefix}/train.npz"), path("${prefix}/val.npz"), emit: windows
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    atac-prepare --insertions ${insertions} --clean-bigwig ${clean_bigwig} --clean-peaks ${clean_peaks} --chrom-sizes ${chrom_sizes} --clean-insertions ${insertions} --out ${prefix} ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir ${prefix}
    touch ${prefix}/train.npz ${prefix}/val.npz versions.yml
    """
}
