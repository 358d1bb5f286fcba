// SAMTOOLS_MERGE: the BAM lanes of one library (samplesheet rows of one sample and replicate) -> one
// coordinate-sorted, indexed BAM for FILTER_SHIFT. Read groups are kept (samtools merge's default).
// Libraries of one BAM skip this step (main.nf).
process SAMTOOLS_MERGE {
    tag "$meta.id"
    label 'process_low'
    container "${params.container_prefix}/align:${params.container_tag}"

    input:
    tuple val(meta), path(bams, stageAs: 'lane?/*')   // coordinate-sorted BAMs, in samplesheet order

    output:
    tuple val(meta), path("${prefix}.bam"), path("${prefix}.bam.bai"), emit: bam
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    def inputs = (bams instanceof Path ? [bams] : bams.collect()).join(' ')
    """
    samtools merge --threads ${task.cpus} ${args} -o ${prefix}.bam ${inputs}
    samtools index ${prefix}.bam

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        samtools: \$(samtools --version | sed -n '1s/^samtools //p')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.bam ${prefix}.bam.bai versions.yml
    """
}
