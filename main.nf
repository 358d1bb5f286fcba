#!/usr/bin/env nextflow
/*
 * atacdenoise: denoise shallow ATAC-seq with a Hilbert-curve CNN grown by NASH.
 *
 *   nextflow run main.nf -entry train   --input deep.csv    --fasta genome.fa --chrom_sizes chrom.sizes --outdir results
 *   nextflow run main.nf -entry denoise --input shallow.csv --model model.onnx (or models:/atac-denoiser@champion) --outdir results
 *   nextflow run main.nf -profile test,docker --outdir results  (default entry: train, then denoise the shallow twins)
 *   add --gtf genes.gtf, --annotation NAME=FILE,... and --sequence_channels for genome channels; --help lists every parameter
 *
 * Parameters are validated against nextflow_schema.json and samplesheets read by assets/schema_input.json
 * (the nf-schema plugin, pinned in nextflow.config); nf-core/atacseq samplesheets work as they are.
 *
 * Every process calls one bin/ executable (a thin shell over `atacdenoise`); the
 * same steps run without Nextflow with `atacdenoise pipeline`.
 */
nextflow.enable.dsl = 2

include { validateParameters; paramsSummaryLog; samplesheetToList } from 'plugin/nf-schema'

include { SIMULATE       } from './modules/simulate'
include { CAT_FASTQ      } from './modules/cat_fastq'
include { SAMTOOLS_MERGE } from './modules/samtools_merge'
include { BOWTIE2_BUILD  } from './modules/bowtie2_build'
include { ALIGN          } from './modules/align'
include { FILTER_SHIFT   } from './modules/filter_shift'
include { SUBSAMPLE      } from './modules/subsample'
include { CALL_PEAKS     } from './modules/call_peaks'
include { CALL_PEAKS as CALL_PEAKS_SHALLOW } from './modules/call_peaks'
include { BIN            } from './modules/bin'
include { BIN as BIN_SHALLOW } from './modules/bin'
include { WINDOWS        } from './modules/windows'
include { NASH_SEARCH    } from './modules/nash_search'
include { EXPORT_ONNX    } from './modules/export_onnx'
include { REGISTER_MODEL } from './modules/register_model'
include { RESOLVE_MODEL  } from './modules/resolve_model'
include { DENOISE        } from './modules/denoise'
include { MERGE_DENOISED } from './modules/merge_denoised'
include { REPORT         } from './modules/report'
include { QC             } from './modules/qc'
include { QC as QC_SHALLOW  } from './modules/qc'
include { QC as QC_DENOISED } from './modules/qc'
include { MULTIQC        } from './modules/multiqc'

// ---------------------------------------------------------------- inputs

// The pipeline's meta.id of a library: SAMPLE, or SAMPLE_REP<N> with nf-core/atacseq's replicate column
// (the same rule as library_id in pyscripts/atacdenoise/samplesheet.py). samplesheetToList gives [] for an
// empty cell, and the schema's minimum is 1, so Groovy truth tells a replicate from none.
def libraryId(String sample, replicate) {
    return replicate ? "${sample}_REP${replicate}" : sample
}

// Samplesheet rows -> one [meta, [files of every lane]] per library (sample and replicate), in sheet order.
// samplesheetToList (nf-schema) has validated each row against assets/schema_input.json and gives
// [meta (sample, replicate), fastq_1, fastq_2, bam] with [] for empty cells; row i sits on line i + 2.
// Lanes of a library must be all paired-end, all single-end or all BAM; the refusal names both lines.
// Paired lanes are listed R1, R2, R1, R2, ... (CAT_FASTQ's order); meta.lanes counts them.
def librariesFromRows(List rows, String sheet) {
    def names = [paired: 'paired-end FASTQ', single: 'single-end FASTQ', bam: 'BAM']
    def libraries = [:]
    rows.eachWithIndex { row, i ->
        def (meta, fastq_1, fastq_2, bam) = row
        def kind = bam ? 'bam' : (fastq_2 ? 'paired' : 'single')
        def id = libraryId(meta.sample, meta.replicate)
        def files = bam ? [bam] : (fastq_2 ? [fastq_1, fastq_2] : [fastq_1])
        def library = libraries[id]
        if (library == null) {
            libraries[id] = [meta: [id: id, sample: meta.sample, replicate: meta.replicate ?: null], kind: kind, line: i + 2,
                             files: files]
        } else if (library.kind != kind) {
            error "${sheet} line ${i + 2} (sample '${meta.sample}'): ${names[kind]} lane, but the library's first lane " +
                  "(line ${library.line}) is ${names[library.kind]}: the lanes of one sample and replicate are all " +
                  "paired-end, all single-end or all BAM"
        } else {
            library.files += files
        }
    }
    return libraries.values().collect { library ->
        def lanes = library.kind == 'paired' ? library.files.size().intdiv(2) : library.files.size()
        def meta = library.meta + [kind: library.kind == 'bam' ? 'bam' : 'fastq', single_end: library.kind == 'single',
                                   lanes: lanes]
        [meta, library.files]
    }
}

def samplesFromSheet(String sheet) {
    return Channel.fromList(librariesFromRows(samplesheetToList(sheet, "${projectDir}/assets/schema_input.json"), sheet))
}

// At the start of every entry: parameters against nextflow_schema.json (unknown ones warned about), then
// the parameters that differ from their defaults.
def initialise() {
    validateParameters()
    if (workflow.profile.tokenize(',').contains('awsbatch')) {
        if (!params.awsbatch_queue) {
            error "-profile awsbatch needs --awsbatch_queue (an AWS Batch job queue)"
        }
        if (!workflow.workDir.toString().startsWith('s3:')) {
            error "-profile awsbatch needs the work directory on S3: -w s3://BUCKET/work"
        }
    }
    log.info paramsSummaryLog(workflow)
}

// Every process's versions.yml -> one YAML text per process (keyed by the process name without its
// workflow path), plus the pipeline's and Nextflow's versions (nf-core's softwareVersionsToYAML).
def processVersionsFromYAML(yaml_file) {
    def yaml = new org.yaml.snakeyaml.Yaml()
    def versions = yaml.load(yaml_file.text).collectEntries { name, tools -> [name.tokenize(':')[-1], tools] }
    return yaml.dumpAsMap(versions).trim()
}

def softwareVersionsToYAML(ch_versions) {
    def pipeline = """
    Workflow:
        ${workflow.manifest.name}: ${workflow.manifest.version}
        Nextflow: ${workflow.nextflow.version}
    """.stripIndent().trim()
    return ch_versions.unique().map { yaml_file -> processVersionsFromYAML(yaml_file) }.unique()
        .mix(Channel.of(pipeline))
}

def requireParam(String name) {
    if (!params[name]) {
        error "--${name} is required (see nextflow_schema.json or --help)"
    }
    return params[name]
}

// --gtf and --annotation -> [[NAME, ...], [file, ...]] for WINDOWS and DENOISE ([[], []] when neither is given).
// --gtf genes.gtf is --annotation tss=genes.gtf; --annotation is a comma-separated NAME=FILE list.
def annotationInputs() {
    def specs = []
    if (params.gtf) {
        specs << ['tss', params.gtf]
    }
    if (params.annotation) {
        params.annotation.toString().tokenize(',')*.trim().findAll { it }.each { spec ->
            def parts = spec.tokenize('=')
            if (parts.size() != 2) {
                error "--annotation takes NAME=FILE[,NAME=FILE...] (e.g. cpg_islands=cpg.bed,blacklist=bl.bed), got '${spec}'"
            }
            specs << parts*.trim()
        }
    }
    def names = specs.collect { it[0] }
    def repeated = names.findAll { name -> names.count(name) > 1 }.toSet()
    if (repeated) {
        error "annotation ${repeated.join(', ')} given twice (--gtf is the annotation tss)"
    }
    return Channel.value([names, specs.collect { file(it[1], checkIfExists: true) }])
}

// --gtf for QC's TSS enrichment: a value channel holding the file, or [] (no TSS enrichment).
def gtfInput() {
    return Channel.value(params.gtf ? file(params.gtf, checkIfExists: true) : [])
}

// --blacklist for CALL_PEAKS and DENOISE: a value channel holding the BED, or [] (every called peak kept).
def blacklistInput() {
    return Channel.value(params.blacklist ? file(params.blacklist, checkIfExists: true) : [])
}

// ---------------------------------------------------------------- sub-workflows

// Reads -> insertions, peaks and coverage: the same steps for deep and shallow samples.
workflow PREPROCESS {
    take:
    ch_samples      // [meta, [fastq_1, fastq_2?, ...]] or [meta, [bam, ...]]: every lane of a library
    ch_fasta        // genome FASTA (used only when no bowtie2 index is given)
    ch_chrom_sizes

    main:
    ch_versions = Channel.empty()
    // Libraries of several lanes are merged first: FASTQ lanes concatenated, BAM lanes merged.
    ch_input = ch_samples.branch { meta, files ->
        bam_lanes: meta.kind == 'bam' && files.size() > 1
        bam: meta.kind == 'bam'
        fastq_lanes: files.size() > (meta.single_end ? 1 : 2)
        fastq: true
    }
    CAT_FASTQ(ch_input.fastq_lanes)
    SAMTOOLS_MERGE(ch_input.bam_lanes)
    ch_versions = ch_versions.mix(CAT_FASTQ.out.versions, SAMTOOLS_MERGE.out.versions)
    if (params.bowtie2_index) {
        ch_index = Channel.value(file(params.bowtie2_index, checkIfExists: true))
    } else {
        BOWTIE2_BUILD(ch_fasta)
        ch_index = BOWTIE2_BUILD.out.index.first()
        ch_versions = ch_versions.mix(BOWTIE2_BUILD.out.versions)
    }
    ch_fastq = ch_input.fastq.mix(CAT_FASTQ.out.reads).map { meta, reads ->
        if (!params.bowtie2_index && !params.fasta && !params.simulate) {
            error "sample '${meta.id}' has FASTQ reads: give --fasta (an index is built) or --bowtie2_index"
        }
        [meta, reads]
    }
    ALIGN(ch_fastq, ch_index)
    // A BAM's index is staged when it sits beside it; otherwise it is built in the task folder.
    ch_given_bams = ch_input.bam.map { meta, files ->
        def bai = file("${files[0]}.bai")
        [meta, files[0], bai.exists() ? bai : []]
    }.mix(SAMTOOLS_MERGE.out.bam)
    FILTER_SHIFT(ALIGN.out.bam.mix(ch_given_bams))
    CALL_PEAKS(FILTER_SHIFT.out.insertions, ch_chrom_sizes, blacklistInput())
    BIN(FILTER_SHIFT.out.insertions, ch_chrom_sizes)
    // QC of every library from its BAM (duplicates, chrM, fragment lengths), FRiP against its own peaks.
    ch_qc = ALIGN.out.bam.mix(ch_given_bams).join(CALL_PEAKS.out.peaks).map { meta, bam, bai, peaks ->
        [meta, bai ? [bam, bai] : [bam], peaks]
    }
    QC(ch_qc, ch_chrom_sizes, gtfInput())
    ch_versions = ch_versions.mix(ALIGN.out.versions, FILTER_SHIFT.out.versions, CALL_PEAKS.out.versions, BIN.out.versions,
                                  QC.out.versions)

    emit:
    insertions = FILTER_SHIFT.out.insertions   // [meta, insertions.bed.gz]
    qc         = QC.out.mqc                    // MultiQC custom content files
    peaks      = CALL_PEAKS.out.peaks          // [meta, narrowPeak]
    coverage   = BIN.out.coverage              // [meta, coverage.bw, coverage.tracks]
    versions   = ch_versions
}

// Deep samples -> shallow twins, training windows, NASH search, ONNX model, MLflow registration.
workflow TRAIN_MODEL {
    take:
    ch_samples
    ch_fasta
    ch_chrom_sizes
    ch_sequence_fasta   // value channel: the FASTA of the DNA sequence channels, or [] (none)
    ch_annotations      // value channel: [[NAME, ...], [file, ...]], or [[], []] (none)

    main:
    PREPROCESS(ch_samples, ch_fasta, ch_chrom_sizes)
    ch_versions = PREPROCESS.out.versions

    // The shallow twins: baseline peaks and tracks, and the samples the default run denoises.
    SUBSAMPLE(PREPROCESS.out.insertions, params.fractions)
    ch_shallow = SUBSAMPLE.out.insertions.transpose().map { meta, bed ->
        def fraction = (bed.name =~ /\.sub([0-9.]+)\.insertions\.bed\.gz$/)[0][1]
        [meta + [id: "${meta.id}.sub${fraction}", deep_id: meta.id, fraction: fraction], bed]
    }
    CALL_PEAKS_SHALLOW(ch_shallow, ch_chrom_sizes, blacklistInput())
    BIN_SHALLOW(ch_shallow, ch_chrom_sizes)
    QC_SHALLOW(ch_shallow.join(CALL_PEAKS_SHALLOW.out.peaks), ch_chrom_sizes, gtfInput())

    // The deep sample is the clean target: its coverage bigWig and its peaks.
    ch_prepare = PREPROCESS.out.insertions
        .join(PREPROCESS.out.coverage.map { meta, bw, tracks -> [meta, bw] })
        .join(PREPROCESS.out.peaks)
    WINDOWS(ch_prepare, ch_chrom_sizes, ch_sequence_fasta, ch_annotations)
    NASH_SEARCH(WINDOWS.out.windows)
    // Export and registration read the model's contract (genome channels included) from the validation windows.
    ch_search = NASH_SEARCH.out.search.join(WINDOWS.out.windows.map { meta, train, val -> [meta, val] })
    EXPORT_ONNX(ch_search)
    if (params.mlflow_tracking_uri) {
        REGISTER_MODEL(ch_search, params.mlflow_tracking_uri, params.model_name)
        ch_versions = ch_versions.mix(REGISTER_MODEL.out.versions)
    }
    ch_versions = ch_versions.mix(SUBSAMPLE.out.versions, CALL_PEAKS_SHALLOW.out.versions, BIN_SHALLOW.out.versions,
                                  WINDOWS.out.versions, NASH_SEARCH.out.versions, EXPORT_ONNX.out.versions,
                                  QC_SHALLOW.out.versions)

    emit:
    onnx     = EXPORT_ONNX.out.onnx   // [meta, model.onnx]
    shallow  = ch_shallow             // [meta, insertions.bed.gz] of every shallow twin
    qc       = PREPROCESS.out.qc.mix(QC_SHALLOW.out.mqc)   // MultiQC custom content files
    versions = ch_versions
}

// --denoise_chunks N > 1: each sample becomes N DENOISE tasks, task I denoising chromosome group I of N
// (`atacdenoise denoise --group I/N`: groups balanced by length, made from the chrom sizes by the one rule in
// pyscripts/atacdenoise/denoise/scatter.py); 1 keeps one task per sample.
def denoiseTasks(ch_insertions, int chunks) {
    if (chunks <= 1) {
        return ch_insertions
    }
    return ch_insertions.flatMap { meta, insertions ->
        (1..chunks).collect { group -> [meta + [group: group, groups: chunks], insertions] }
    }
}

// The DENOISE tasks of one sample -> [meta, every group's files] for MERGE_DENOISED, the meta without the
// group keys. groupKey knows how many groups to wait for, so each sample is merged once its own are done.
def groupsOfSample(ch_denoised) {
    return ch_denoised
        .map { meta, denoised, peakprob, peaks, provenance ->
            def sample = meta.findAll { key, value -> !(key in ['group', 'groups']) }
            [groupKey(sample, meta.groups), [denoised, peakprob, peaks, provenance]]
        }
        .groupTuple()
        .map { sample, parts -> [sample.getGroupTarget(), parts.flatten()] }
}

// Insertions of new samples -> denoised track, peak probabilities, peaks, report.
workflow DENOISE_SAMPLES {
    take:
    ch_insertions   // [meta, insertions.bed.gz]
    ch_model_file   // value channel: a local .onnx, or [] when model_uri is used
    model_uri       // value channel: models:/NAME/VERSION (RESOLVE_MODEL's), or ''
    ch_chrom_sizes
    ch_genome_fasta // value channel: genome FASTA, or [] (a model with sequence channels needs it)
    ch_annotations  // value channel: [[NAME, ...], [file, ...]], or [[], []]

    main:
    def chunks = params.denoise_chunks as int
    DENOISE(denoiseTasks(ch_insertions, chunks), ch_model_file, model_uri, ch_chrom_sizes, ch_genome_fasta,
            ch_annotations, blacklistInput())
    ch_versions = DENOISE.out.versions
    // [meta, denoised.bw, peakprob.bw, peaks.narrowPeak, provenance.json]: one run's output set per sample
    ch_denoised = DENOISE.out.denoised.join(DENOISE.out.peakprob).join(DENOISE.out.peaks).join(DENOISE.out.provenance)
    if (chunks > 1) {
        MERGE_DENOISED(groupsOfSample(ch_denoised))
        ch_denoised = MERGE_DENOISED.out.denoised.join(MERGE_DENOISED.out.peakprob).join(MERGE_DENOISED.out.peaks)
            .join(MERGE_DENOISED.out.provenance)
        ch_versions = ch_versions.mix(MERGE_DENOISED.out.versions)
    }
    // The report sets the denoised result beside the shallow input it came from.
    REPORT(ch_denoised.join(ch_insertions), ch_chrom_sizes)
    // FRiP of the denoised peaks: the shallow input's insertions inside them (prefix: conf/modules.config).
    ch_denoised_peaks = ch_denoised.map { meta, denoised, peakprob, peaks, provenance -> [meta, peaks] }
    QC_DENOISED(ch_insertions.join(ch_denoised_peaks), ch_chrom_sizes, gtfInput())

    emit:
    report   = REPORT.out.html
    qc       = QC_DENOISED.out.mqc
    versions = ch_versions.mix(REPORT.out.versions, QC_DENOISED.out.versions)
}

// ---------------------------------------------------------------- reference inputs

// The deep samples, genome FASTA and chrom sizes: simulated under -profile test, else from params.
// Genome channel inputs are [] when absent (optional process inputs): the FASTA goes to WINDOWS with
// --sequence_channels (the simulated genome under -profile test) and to DENOISE whenever given.
workflow INPUTS {
    main:
    ch_versions = Channel.empty()
    if (params.simulate) {
        SIMULATE(Channel.value([id: 'sim']))
        ch_samples = SIMULATE.out.reads.map { meta, reads -> [meta + [kind: 'fastq', single_end: false, lanes: 1], reads] }
        ch_fasta = SIMULATE.out.fasta.first()
        ch_chrom_sizes = SIMULATE.out.chrom_sizes.first()
        ch_versions = SIMULATE.out.versions
    } else {
        ch_samples = samplesFromSheet(requireParam('input'))
        ch_fasta = params.fasta ? Channel.value(file(params.fasta, checkIfExists: true)) : Channel.empty()
        ch_chrom_sizes = Channel.value(file(requireParam('chrom_sizes'), checkIfExists: true))
    }
    if (params.sequence_channels && !params.simulate && !params.fasta) {
        error "--sequence_channels reads the DNA sequence: give the genome with --fasta"
    }
    ch_sequence_fasta = params.sequence_channels ? ch_fasta : Channel.value([])
    ch_genome_fasta = params.fasta ? ch_fasta : ch_sequence_fasta
    ch_annotations = annotationInputs()

    emit:
    samples         = ch_samples
    fasta           = ch_fasta
    chrom_sizes     = ch_chrom_sizes
    sequence_fasta  = ch_sequence_fasta   // WINDOWS: FASTA or []
    genome_fasta    = ch_genome_fasta     // DENOISE: FASTA or []
    annotations     = ch_annotations      // WINDOWS and DENOISE: [[NAME, ...], [file, ...]] or [[], []]
    versions        = ch_versions
}

// ---------------------------------------------------------------- run records

// pipeline_info/software_versions.yml from every process's versions.yml, and one MultiQC report of the QC
// custom content and those versions (MultiQC's own version joins the pipeline_info file).
workflow FINISH {
    take:
    ch_versions     // versions.yml of every process that ran
    ch_qc           // MultiQC custom content (*_mqc.json)

    main:
    ch_versions_yaml = softwareVersionsToYAML(ch_versions)
    ch_multiqc_versions = Channel.empty()
    if (!params.skip_multiqc) {
        ch_collated = ch_versions_yaml.collectFile(name: 'atacdenoise_software_mqc_versions.yml', sort: true, newLine: true)
        MULTIQC(ch_qc.mix(ch_collated).collect())
        ch_multiqc_versions = MULTIQC.out.versions
    }
    ch_versions_yaml.mix(ch_multiqc_versions.map { yaml_file -> processVersionsFromYAML(yaml_file) })
        .collectFile(storeDir: "${params.outdir}/pipeline_info", name: 'software_versions.yml', sort: true, newLine: true)
}

// --model is a local .onnx (staged as a file) or a registry URI (passed as text).
def modelInputs(String model) {
    if (model.startsWith('models:/')) {
        return [Channel.value([]), model]
    }
    return [Channel.value(file(model, checkIfExists: true)), '']
}

// RESOLVE_MODEL's JSON -> the pinned models:/NAME/VERSION, logged with the weights' sha256.
def resolvedModelUri(String model_uri, json) {
    def resolved = new groovy.json.JsonSlurper().parse(json)
    log.info "${model_uri} -> ${resolved.resolved_uri} (onnx sha256 ${resolved.onnx_sha256})"
    return resolved.resolved_uri
}

// ---------------------------------------------------------------- entry workflows

workflow train {
    initialise()
    INPUTS()
    TRAIN_MODEL(INPUTS.out.samples, INPUTS.out.fasta, INPUTS.out.chrom_sizes, INPUTS.out.sequence_fasta,
                INPUTS.out.annotations)
    FINISH(INPUTS.out.versions.mix(TRAIN_MODEL.out.versions), TRAIN_MODEL.out.qc)
}

workflow denoise {
    initialise()
    INPUTS()
    def (ch_model_file, model_uri) = modelInputs(requireParam('model'))
    ch_versions = INPUTS.out.versions
    // A registry URI is pinned to the version its alias points at now: RESOLVE_MODEL (never cached) writes
    // the version and ONNX sha256 and downloads that ONNX file, which DENOISE gets, so -resume re-runs DENOISE
    // when the alias moves and keeps its results while it does not, and DENOISE needs no MLflow (infer image).
    // A local .onnx (model_uri '') passes as it is.
    if (model_uri) {
        if (!params.mlflow_tracking_uri) {
            error "--model ${model_uri} is read from the MLflow registry: give --mlflow_tracking_uri"
        }
        RESOLVE_MODEL([id: model_uri.replaceFirst('models:/', '')], model_uri, params.mlflow_tracking_uri)
        ch_model_file = RESOLVE_MODEL.out.resolved.join(RESOLVE_MODEL.out.onnx)
            .map { meta, json, onnx -> resolvedModelUri(model_uri, json); onnx }.first()
        ch_versions = ch_versions.mix(RESOLVE_MODEL.out.versions)
    }
    PREPROCESS(INPUTS.out.samples, INPUTS.out.fasta, INPUTS.out.chrom_sizes)
    DENOISE_SAMPLES(PREPROCESS.out.insertions, ch_model_file, '', INPUTS.out.chrom_sizes,
                    INPUTS.out.genome_fasta, INPUTS.out.annotations)
    FINISH(ch_versions.mix(PREPROCESS.out.versions, DENOISE_SAMPLES.out.versions),
           PREPROCESS.out.qc.mix(DENOISE_SAMPLES.out.qc))
}

// Default: train on the deep samples, then denoise their shallow twins (or --denoise_input) with the new model.
workflow {
    initialise()
    INPUTS()
    TRAIN_MODEL(INPUTS.out.samples, INPUTS.out.fasta, INPUTS.out.chrom_sizes, INPUTS.out.sequence_fasta,
                INPUTS.out.annotations)
    ch_model_file = TRAIN_MODEL.out.onnx.map { meta, onnx -> onnx }.first()
    ch_versions = INPUTS.out.versions.mix(TRAIN_MODEL.out.versions)
    ch_qc = TRAIN_MODEL.out.qc
    if (params.denoise_input) {
        PREPROCESS(samplesFromSheet(params.denoise_input), INPUTS.out.fasta, INPUTS.out.chrom_sizes)
        ch_to_denoise = PREPROCESS.out.insertions
        ch_versions = ch_versions.mix(PREPROCESS.out.versions)
        ch_qc = ch_qc.mix(PREPROCESS.out.qc)
    } else {
        ch_to_denoise = TRAIN_MODEL.out.shallow
    }
    DENOISE_SAMPLES(ch_to_denoise, ch_model_file, '', INPUTS.out.chrom_sizes, INPUTS.out.genome_fasta,
                    INPUTS.out.annotations)
    FINISH(ch_versions.mix(DENOISE_SAMPLES.out.versions), ch_qc.mix(DENOISE_SAMPLES.out.qc))
}
