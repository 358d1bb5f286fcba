// CAT_FASTQ: the lanes of one library (samplesheet rows of one sample and replicate) -> one FASTQ per read,
// as nf-core's CAT_FASTQ does. Gzipped FASTQ concatenates as it is (gzip members); plain FASTQ is gzipped.
// Libraries of one lane skip this step (main.nf).
process CAT_FASTQ {
    tag "$meta.id"
    label 'process_single'
    container "${params.container_prefix}/align:${params.container_tag}"

    input:
    tuple val(meta), path(reads, stageAs: 'lane?/*')   // lane 1 R1, lane 1 R2, lane 2 R1, ... (single-end: R1 of each lane)

    output:
    tuple val(meta), path("${prefix}_{1,2}.merged.fastq.gz"), emit: reads
    path "versions.yml", emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    prefix = task.ext.prefix ?: "${meta.id}"
    def files = reads instanceof Path ? [reads] : reads.collect()
    def read1 = meta.single_end ? files : files.collate(2).collect { it[0] }
    def read2 = meta.single_end ? [] : files.collate(2).collect { it[1] }
    def cat_read2 = read2 ? "cat_lanes ${read2.join(' ')} > ${prefix}_2.merged.fastq.gz" : ''
    """
    cat_lanes() { for f in "\$@"; do case "\$f" in *.gz) cat "\$f" ;; *) gzip -c "\$f" ;; esac; done; }
    cat_lanes ${read1.join(' ')} > ${prefix}_1.merged.fastq.gz
    ${cat_read2}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cat: \$(cat --version 2>&1 | sed -n '1s/^cat (GNU coreutils) //p')
        gzip: \$(gzip --version 2>&1 | sed -n '1s/^gzip //p')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo '' | gzip > ${prefix}_1.merged.fastq.gz
    touch versions.yml
    """
}
