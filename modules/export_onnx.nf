// EXPORT_ONNX: the search's best model as one ONNX file (what DENOISE runs, no torch needed).
// The validation windows give the model's contract (bin size, units, genome channels) and the parity check.
process EXPORT_ONNX {
    tag "$meta.id"
    label 'process_low'
    container "${params.container_prefix}/train-gpu:${params.container_tag}"

    input:
    tuple val(meta), path(search), path(val)

    output:
    tuple val(meta), path("${prefix}.onnx"), emit: onnx
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    atac-export ${search} --data ${val} --output ${prefix}.onnx ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
        onnx: \$(python -c 'import onnx; print(onnx.__version__)')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.onnx versions.yml
    """
}
