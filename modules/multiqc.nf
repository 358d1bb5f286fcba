// MULTIQC: one report from the QC step's custom content (*_mqc.json) and the pipeline's software versions
// (atacdenoise_software_mqc_versions.yml, collected in main.nf from every process's versions.yml).
process MULTIQC {
    tag "${params.outdir}"
    label 'process_single'
    container "${params.container_prefix}/qc:${params.container_tag}"

    input:
    path multiqc_files, stageAs: '?/*'

    output:
    path "multiqc_report.html", emit: report
    path "multiqc_data", emit: data
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    multiqc --force ${args} .

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        multiqc: \$(multiqc --version | sed 's/^.*version //')
    END_VERSIONS
    """

    stub:
    """
    mkdir multiqc_data
    touch multiqc_report.html versions.yml
    """
}
