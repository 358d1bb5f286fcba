// BOWTIE2_BUILD: the bowtie2 index of the genome FASTA, built once and shared by every ALIGN task.
process BOWTIE2_BUILD {
    tag "$fasta"
    label 'process_high'
    container "${params.container_prefix}/align:${params.container_tag}"

    input:
    path fasta

    output:
    path "bowtie2_index", emit: index
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    atac-align --fasta ${fasta} --build-index bowtie2_index --threads ${task.cpus} ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
        bowtie2: \$(bowtie2 --version 2>&1 | sed -n '1s/.*version //p')
    END_VERSIONS
    """

    stub:
    """
    mkdir bowtie2_index
    touch bowtie2_index/genome.1.bt2 versions.yml
    """
}
