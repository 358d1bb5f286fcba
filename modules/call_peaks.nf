// CALL_PEAKS: MACS3 peaks with ATAC settings (narrowPeak, its bigBed, signal bigWig).
process CALL_PEAKS {
    tag "$meta.id"
    label 'process_medium'
    container "${params.container_prefix}/peaks:${params.container_tag}"

    input:
    tuple val(meta), path(insertions)
    path chrom_sizes
    path blacklist    // BED of regions no kept peak may overlap (params.blacklist), or []

    output:
    tuple val(meta), path("${prefix}.narrowPeak"), emit: peaks
    tuple val(meta), path("${prefix}.signal.bw"), emit: signal
    tuple val(meta), path("${prefix}.bb"), optional: true, emit: bigbed   // the peaks as bigBed; none without peaks
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def blacklist_arg = blacklist ? "--blacklist ${blacklist}" : ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    atac-peaks --input ${insertions} --chrom-sizes ${chrom_sizes} ${blacklist_arg} --out-prefix ${prefix} ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
        macs3: \$(macs3 --version | sed 's/^macs3 //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.narrowPeak ${prefix}.signal.bw ${prefix}.bb versions.yml
    """
}
