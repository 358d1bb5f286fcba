// SIMULATE: a small synthetic deep ATAC-seq sample (genome, FASTQ pair, truth) for -profile test.
process SIMULATE {
    tag "$meta.id"
    label 'process_low'
    container "${params.container_prefix}/tracks:${params.container_tag}"

    input:
    val meta

    output:
    tuple val(meta), path("${prefix}/${prefix}_R{1,2}.fastq.gz"), emit: reads
    tuple val(meta), path("${prefix}/${prefix}.bam"), path("${prefix}/${prefix}.bam.bai"), emit: bam
    path "${prefix}/genome.fa", emit: fasta
    path "${prefix}/chrom.sizes", emit: chrom_sizes
    path "${prefix}/truth_*", emit: truth
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    atac-simulate --outdir ${prefix} --prefix ${prefix} ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}
    touch ${prefix}/${prefix}_R1.fastq.gz ${prefix}/${prefix}_R2.fastq.gz ${prefix}/${prefix}.bam ${prefix}/${prefix}.bam.bai
    touch ${prefix}/genome.fa ${prefix}/chrom.sizes ${prefix}/truth_peaks.bed ${prefix}/truth_accessibility.bw versions.yml
    """
}
