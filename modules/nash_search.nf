// NASH_SEARCH: grow the denoising CNN by network morphisms; the GPU step (-profile gpu gives it one).
process NASH_SEARCH {
    tag "$meta.id"
    label 'process_gpu'
    container "${params.container_prefix}/train-gpu:${params.container_tag}"

    input:
    tuple val(meta), path(train), path(val)

    output:
    tuple val(meta), path("${prefix}"), emit: search
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}.search"
    """
    atac-search --train ${train} --val ${val} --outdir ${prefix} ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
        torch: \$(python -c 'import torch; print(torch.__version__)')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}.search"
    """
    mkdir ${prefix}
    touch versions.yml
    """
}
