// MERGE_DENOISED: one sample's DENOISE tasks (one per chromosome group, params.denoise_chunks > 1) gathered
// into the output set of one DENOISE run: the same bigWig values, the same peaks (renumbered across the file)
// and the run's provenance. Groups of another model, threshold or library, or that overlap, are refused.
process MERGE_DENOISED {
    tag "$meta.id"
    label 'process_low'
    container "${params.container_prefix}/infer:${params.container_tag}"

    input:
    tuple val(meta), path(parts)   // every group's PREFIX.{denoised.bw,peakprob.bw,peaks.narrowPeak,provenance.json}

    output:
    tuple val(meta), path("${prefix}.denoised.bw"), emit: denoised
    tuple val(meta), path("${prefix}.peakprob.bw"), emit: peakprob
    tuple val(meta), path("${prefix}.peaks.narrowPeak"), emit: peaks
    tuple val(meta), path("${prefix}.peaks.bb"), optional: true, emit: peaks_bigbed   // none without peaks
    tuple val(meta), path("${prefix}.provenance.json"), emit: provenance   // the run's, with the files merged
    tuple val(meta), path("${prefix}.igv.xml"), emit: igv_session   // IGV session of the merged tracks
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    def group_prefixes = parts.findAll { it.name.endsWith('.provenance.json') }.collect { it.name - '.provenance.json' }.sort().join(' ')
    """
    atac-merge ${group_prefixes} --out-prefix ${prefix} ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.denoised.bw ${prefix}.peakprob.bw ${prefix}.peaks.narrowPeak ${prefix}.peaks.bb ${prefix}.provenance.json ${prefix}.igv.xml versions.yml
    """
}
