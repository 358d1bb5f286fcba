// DENOISE: ONNX Runtime inference on a shallow sample: denoised track, peak probabilities, peaks (narrowPeak, bigBed),
// provenance and an IGV session.
// Set task.ext.args '--library-size N' when the input is a slice of a larger library (tracks/depth.py).
// Genome channel files (FASTA, NAME=FILE annotations) are always passed when given: a model reads those its
// contract lists (and refuses to run without them) and notes and ignores the rest.
// With meta.group and meta.groups (params.denoise_chunks > 1) the task denoises chromosome group
// meta.group of meta.groups (balanced by length; the depth is the whole input's) as PREFIX.group<I>of<N>,
// and MERGE_DENOISED gathers the groups.
process DENOISE {
    tag "$meta.id"
    label 'process_medium'
    container "${params.container_prefix}/infer:${params.container_tag}"

    input:
    tuple val(meta), path(insertions)
    path model_file   // a local .onnx file, or [] when model_uri is used
    val model_uri     // models:/NAME@ALIAS from the MLflow registry, or '' when model_file is used
    path chrom_sizes
    path fasta                                                                  // genome FASTA, or []
    tuple val(annotation_names), path(annotations, stageAs: 'annotation?/*')    // NAMEs and their files in the same order, or [[], []]
    path blacklist    // BED of regions no kept peak may overlap (params.blacklist), or []

    output:
    tuple val(meta), path("${prefix}.denoised.bw"), emit: denoised
    tuple val(meta), path("${prefix}.peakprob.bw"), emit: peakprob
    tuple val(meta), path("${prefix}.peaks.narrowPeak"), emit: peaks
    tuple val(meta), path("${prefix}.peaks.bb"), optional: true, emit: peaks_bigbed   // none without peaks
    tuple val(meta), path("${prefix}.provenance.json"), emit: provenance   // model sha256, library depth used, versions
    tuple val(meta), path("${prefix}.igv.xml"), emit: igv_session   // IGV session of the tracks above (relative paths)
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def blacklist_arg = blacklist ? "--blacklist ${blacklist}" : ''
    prefix = task.ext.prefix ?: (meta.group ? "${meta.id}.group${meta.group}of${meta.groups}" : "${meta.id}")
    def group_arg = meta.group ? "--group ${meta.group}/${meta.groups}" : ''
    def model = model_uri ?: "${model_file}"
    def fasta_arg = fasta ? "--fasta ${fasta}" : ''
    def annotation_files = annotations instanceof Path ? [annotations] : annotations.collect()
    def annotation_args = [annotation_names, annotation_files].transpose().collect { name, file -> "--annotation ${name}=${file}" }.join(' ')
    """
    atac-denoise --input ${insertions} --model ${model} --chrom-sizes ${chrom_sizes} ${fasta_arg} ${annotation_args} ${group_arg} ${blacklist_arg} --out-prefix ${prefix} ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        atacdenoise: \$(atacdenoise --version | sed 's/^atacdenoise //')
        onnxruntime: \$(python -c 'import onnxruntime; print(onnxruntime.__version__)')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: (meta.group ? "${meta.id}.group${meta.group}of${meta.groups}" : "${meta.id}")
    """
    touch ${prefix}.denoised.bw ${prefix}.peakprob.bw ${prefix}.peaks.narrowPeak ${prefix}.peaks.bb ${prefix}.provenance.json ${prefix}.igv.xml versions.yml
    """
}
