// REGISTER_MODEL: log the search's best model to MLflow and register a new version of it.
// The validation windows give the model's contract (bin size, units, genome channels) and the parity check.
process REGISTER_MODEL {
    tag "$meta.id"
    label 'process_single'
    container "${params.container_prefix}/registry:${params.container_tag}"

    input:
    tuple val(meta), path(search), path(val)
    val tracking_uri
    val model_name

    output:
    tuple val(meta), path("${prefix}.registered.txt"), emit: registered
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    atac-register ${search} --data ${val} --tracking-uri ${tracking_uri} --name ${model_name} ${args} > ${prefix}.registered.txt

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
        mlflow: \$(python -c 'import mlflow; print(mlflow.__version__)')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.registered.txt versions.yml
    """
}
