// WINDOWS: training and validation windows (noisy input at several depths, clean target, peak labels).
// With --resample in ext.args (the default, params.resample), train.npz is a resampling source: the search
// thins the deep insertions afresh every epoch.
// Genome channels (optional): a FASTA gives the DNA sequence channels, each NAME=FILE annotation one more
// channel (tss from a GTF/GFF3, blacklist masks); without them the windows are counts-only.
process WINDOWS {
    tag "$meta.id"
    label 'process_medium'
    container "${params.container_prefix}/tracks:${params.container_tag}"

    input:
    tuple val(meta), path(insertions), path(clean_bigwig), path(clean_peaks)
    path chrom_sizes
    path fasta                                                                  // genome FASTA, or [] for no sequence channels
    tuple val(annotation_names), path(annotations, stageAs: 'annotation?/*')    // NAMEs and their files in the same order, or [[], []]

    output:
    tuple val(meta), path("${prefix}/train.npz"), path("${prefix}/val.npz"), emit: windows
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    def fasta_arg = fasta ? "--fasta ${fasta}" : ''
    def annotation_files = annotations instanceof Path ? [annotations] : annotations.collect()
    def annotation_args = [annotation_names, annotation_files].transpose().collect { name, file -> "--annotation ${name}=${file}" }.join(' ')
    """
    atac-prepare --insertions ${insertions} --clean-bigwig ${clean_bigwig} --clean-peaks ${clean_peaks} --chrom-sizes ${chrom_sizes} --clean-insertions ${insertions} ${fasta_arg} ${annotation_args} --outdir ${prefix} ${args}

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
