// BIN: 25 bp coverage track as bigWig and as the array store training reads.
process BIN {
    tag "$meta.id"
    label 'process_medium'
    container "${params.container_prefix}/tracks:${params.container_tag}"

    input:
    tuple val(meta), path(insertions)
    path chrom_sizes

    output:
    tuple val(meta), path("${prefix}.coverage.bw"), path("${prefix}.coverage.tracks"), emit: coverage
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    atac-bin --input ${insertions} --chrom-sizes ${chrom_sizes} --out-prefix ${prefix}.coverage ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir ${prefix}.coverage.tracks
    touch ${prefix}.coverage.bw versions.yml
    """
}
