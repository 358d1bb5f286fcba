// RESOLVE_MODEL: models:/NAME@ALIAS -> the version the alias points at now and its ONNX sha256
// (model.resolved.json), and that version's ONNX file (model.onnx). main.nf hands DENOISE the file, so
// -resume re-runs denoising exactly when the alias has moved (other weights) and DENOISE's image needs no
// MLflow. Never cached: an alias can move between runs.
process RESOLVE_MODEL {
    tag "$meta.id"
    label 'process_single'
    container "${params.container_prefix}/registry:${params.container_tag}"
    cache false

    input:
    val meta            // [id: NAME@ALIAS]
    val model_uri       // models:/NAME@ALIAS (or models:/NAME/VERSION)
    val tracking_uri    // MLflow tracking URI

    output:
    tuple val(meta), path("${prefix}.resolved.json"), emit: resolved
    tuple val(meta), path("${prefix}.onnx"), emit: onnx
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'model'
    """
    atac-resolve ${model_uri} --tracking-uri ${tracking_uri} --output ${prefix}.onnx ${args} > ${prefix}.resolved.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
        mlflow: \$(python -c 'import mlflow; print(mlflow.__version__)')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: 'model'
    """
    echo '{"resolved_uri": "${model_uri}", "version": "0", "onnx_sha256": ""}' > ${prefix}.resolved.json
    touch ${prefix}.onnx versions.yml
    """
}
