// FILTER_SHIFT: filtered, Tn5-shifted insertions (BED6, bgzipped, tabix-indexed) from a BAM.
process FILTER_SHIFT {
    tag "$meta.id"
    label 'process_low'
    container "${params.container_prefix}/peaks:${params.container_tag}"

    input:
    tuple val(meta), path(bam), path(bai)

    output:
    tuple val(meta), path("${prefix}.insertions.bed.gz"), emit: insertions
    tuple val(meta), path("${prefix}.insertions.bed.gz.{tbi,csi}"), emit: index   // tabix (.csi past 512 Mb)
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    atac-insertions --input ${bam} --output ${prefix}.insertions.bed.gz ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo -n | gzip > ${prefix}.insertions.bed.gz
    touch ${prefix}.insertions.bed.gz.tbi versions.yml
    """
}
