// QC: the ATAC-seq numbers every lab reports for one library (insertions, fraction on chrM, duplicates,
// NRF/PBC1/PBC2, fragment-length histogram, TSS enrichment and profile with --gtf, FRiP with peaks) as
// PREFIX.qc.json, PNG plots and MultiQC custom content (PREFIX.atacdenoise_qc_*_mqc.json).
// Read filters (--min-mapq, --keep-duplicates, ...) come from task.ext.args (see `atacdenoise qc --help`).
process QC {
    tag "$meta.id"
    label 'process_low'
    container "${params.container_prefix}/qc:${params.container_tag}"

    input:
    tuple val(meta), path(reads), path(peaks)   // reads: a BAM (with its .bai, when there is one), fragments or insertions; peaks: narrowPeak or [] (no FRiP)
    path chrom_sizes
    path gtf                                    // genes (GTF/GFF3/BED6 of TSSs) for TSS enrichment, or []

    output:
    tuple val(meta), path("${prefix}.qc.json"), emit: json
    tuple val(meta), path("${prefix}.*.png"), optional: true, emit: plots
    path "${prefix}.atacdenoise_qc_*_mqc.json", emit: mqc
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    def read_files = reads instanceof Path ? [reads] : reads.collect()
    def input = read_files.find { !it.name.endsWith('.bai') }
    def gtf_arg = gtf ? "--gtf ${gtf}" : ''
    def peaks_arg = peaks ? "--peaks ${peaks}" : ''
    """
    atac-qc --input ${input} --chrom-sizes ${chrom_sizes} ${gtf_arg} ${peaks_arg} --sample ${prefix} --out-prefix ${prefix} ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.qc.json ${prefix}.atacdenoise_qc_general_mqc.json versions.yml
    """
}
