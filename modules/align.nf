// ALIGN: FASTQ pair (or single FASTQ) -> bowtie2 -> samtools sort + markdup -> indexed BAM.
process ALIGN {
    tag "$meta.id"
    label 'process_high'
    container "${params.container_prefix}/align:${params.container_tag}"

    input:
    tuple val(meta), path(reads)
    path index

    output:
    tuple val(meta), path("${prefix}.bam"), path("${prefix}.bam.bai"), emit: bam
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    def fastq2 = meta.single_end ? '' : "--fastq2 ${reads[1]}"
    """
    atac-align --fastq1 ${reads[0]} ${fastq2} --index ${index} --output ${prefix}.bam --sample ${meta.id} --threads ${task.cpus} ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
        bowtie2: \$(bowtie2 --version 2>&1 | sed -n '1s/.*version //p')
        samtools: \$(samtools --version | sed -n '1s/^samtools //p')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.bam ${prefix}.bam.bai versions.yml
    """
}
