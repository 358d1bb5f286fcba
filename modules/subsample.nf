// SUBSAMPLE: the deep sample's shallow twins, one insertions file per fraction (one pass).
process SUBSAMPLE {
    tag "$meta.id"
    label 'process_low'
    container "${params.container_prefix}/peaks:${params.container_tag}"

    input:
    tuple val(meta), path(insertions)
    val fractions

    output:
    tuple val(meta), path("${prefix}.sub*.insertions.bed.gz"), emit: insertions
    tuple val(meta), path("${prefix}.sub*.insertions.bed.gz.{tbi,csi}"), emit: index   // tabix: the input is sorted
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    atac-subsample --input ${insertions} --fraction ${fractions} --output ${prefix}.sub{fraction}.insertions.bed.gz ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo -n | gzip > ${prefix}.sub0.1.insertions.bed.gz
    touch ${prefix}.sub0.1.insertions.bed.gz.tbi versions.yml
    """
}
