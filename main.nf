#!/usr/bin/env nextflow
/*
 * atacdenoise: denoise shallow ATAC-seq with a Hilbert-curve CNN grown by NASH.
 *
 *   nextflow run main.nf -entry train   --input deep.csv    --fasta genome.fa --chrom_sizes chrom.sizes
 *   nextflow run main.nf -entry denoise --input shallow.csv --model model.onnx (or models:/atac-denoiser@champion)
 *   nextflow run main.nf -profile test,docker      (default entry: train, then denoise the shallow twins)
 *   add --gtf genes.gtf, --annotation NAME=FILE,... and --sequence_channels for genome channels
 *
 * Every process calls one bin/ executable (a thin shell over `atacdenoise`); the
 * same steps run without Nextflow with `atacdenoise pipeline`.
 */
nextflow.enable.dsl = 2

include { SIMULATE       } from './modules/simulate'
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
include { DENOISE        } from './modules/denoise'
include { REPORT         } from './modules/report'
include { QC             } from './modules/qc'
include { QC as QC_SHALLOW  } from './modules/qc'
include { QC as QC_DENOISED } from './modules/qc'

// ---------------------------------------------------------------- inputs

// One samplesheet row -> [meta, [files]]. `atacdenoise samplesheet check` does the full
// validation (assets/schema_input.json); this only refuses what would break the channels.
def sampleFromRow(Map row) {
    if (!row.sample) {
        error "samplesheet row without a sample name: ${row}"
    }
    def meta = [id: row.sample]
    if (row.bam && !row.fastq_1) {
        return [meta + [kind: 'bam'], [file(row.bam, checkIfExists: true)]]
    }
    if (row.fastq_1 && !row.bam) {
        def reads = [file(row.fastq_1, checkIfExists: true)]
        if (row.fastq_2) {
            reads << file(row.fastq_2, checkIfExists: true)
        }
        return [meta + [kind: 'fastq', single_end: reads.size() == 1], reads]
    }
    error "samplesheet row '${row.sample}': give either fastq_1 (+ fastq_2) or bam"
}

def samplesFromSheet(String sheet) {
    Channel.fromPath(sheet, checkIfExists: true)
        .splitCsv(header: true, strip: true)
        .map { row -> sampleFromRow(row) }
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

// ---------------------------------------------------------------- sub-workflows

// Reads -> insertions, peaks and coverage: the same steps for deep and shallow samples.
workflow PREPROCESS {
    take:
    ch_samples      // [meta, [fastq_1, fastq_2?]] or [meta, [bam]]
    ch_fasta        // genome FASTA (used only when no bowtie2 index is given)
    ch_chrom_sizes

    main:
    ch_versions = Channel.empty()
    ch_input = ch_samples.branch { meta, files ->
        bam: meta.kind == 'bam'
        fastq: true
    }
    if (params.bowtie2_index) {
        ch_index = Channel.value(file(params.bowtie2_index, checkIfExists: true))
    } else {
        BOWTIE2_BUILD(ch_fasta)
        ch_index = BOWTIE2_BUILD.out.index.first()
        ch_versions = ch_versions.mix(BOWTIE2_BUILD.out.versions)
    }
    ch_fastq = ch_input.fastq.map { meta, reads ->
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
    }
    FILTER_SHIFT(ALIGN.out.bam.mix(ch_given_bams))
    CALL_PEAKS(FILTER_SHIFT.out.insertions, ch_chrom_sizes)
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
    CALL_PEAKS_SHALLOW(ch_shallow, ch_chrom_sizes)
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
    versions = ch_versions
}

// Insertions of new samples -> denoised track, peak probabilities, peaks, report.
workflow DENOISE_SAMPLES {
    take:
    ch_insertions   // [meta, insertions.bed.gz]
    ch_model_file   // value channel: a local .onnx, or [] when model_uri is used
    model_uri       // models:/NAME@ALIAS, or ''
    ch_chrom_sizes
    ch_genome_fasta // value channel: genome FASTA, or [] (a model with sequence channels needs it)
    ch_annotations  // value channel: [[NAME, ...], [file, ...]], or [[], []]

    main:
    DENOISE(ch_insertions, ch_model_file, model_uri, ch_chrom_sizes, ch_genome_fasta, ch_annotations)
    // The report sets the denoised result beside the shallow input it came from.
    ch_report = DENOISE.out.denoised.join(DENOISE.out.peakprob).join(DENOISE.out.peaks).join(DENOISE.out.provenance)
        .join(ch_insertions)
    REPORT(ch_report, ch_chrom_sizes)
    // FRiP of the denoised peaks: the shallow input's insertions inside them (prefix: conf/modules.config).
    QC_DENOISED(ch_insertions.join(DENOISE.out.peaks), ch_chrom_sizes, gtfInput())

    emit:
    denoised = DENOISE.out.denoised
    peaks    = DENOISE.out.peaks
    report   = REPORT.out.html
    qc       = QC_DENOISED.out.mqc
    versions = DENOISE.out.versions.mix(REPORT.out.versions, QC_DENOISED.out.versions)
}

// ---------------------------------------------------------------- reference inputs

// The deep samples, genome FASTA and chrom sizes: simulated under -profile test, else from params.
// Genome channel inputs are [] when absent (optional process inputs): the FASTA goes to WINDOWS with
// --sequence_channels (the simulated genome under -profile test) and to DENOISE whenever given.
workflow INPUTS {
    main:
    if (params.simulate) {
        SIMULATE(Channel.value([id: 'sim']))
        ch_samples = SIMULATE.out.reads.map { meta, reads -> [meta + [kind: 'fastq', single_end: false], reads] }
        ch_fasta = SIMULATE.out.fasta.first()
        ch_chrom_sizes = SIMULATE.out.chrom_sizes.first()
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
}

// --model is a local .onnx (staged as a file) or a registry URI (passed as text).
def modelInputs(String model) {
    if (model.startsWith('models:/')) {
        return [Channel.value([]), model]
    }
    return [Channel.value(file(model, checkIfExists: true)), '']
}

// ---------------------------------------------------------------- entry workflows

workflow train {
    INPUTS()
    TRAIN_MODEL(INPUTS.out.samples, INPUTS.out.fasta, INPUTS.out.chrom_sizes, INPUTS.out.sequence_fasta,
                INPUTS.out.annotations)
}

workflow denoise {
    INPUTS()
    def (ch_model_file, model_uri) = modelInputs(requireParam('model'))
    PREPROCESS(INPUTS.out.samples, INPUTS.out.fasta, INPUTS.out.chrom_sizes)
    DENOISE_SAMPLES(PREPROCESS.out.insertions, ch_model_file, model_uri, INPUTS.out.chrom_sizes,
                    INPUTS.out.genome_fasta, INPUTS.out.annotations)
}

// Default: train on the deep samples, then denoise their shallow twins (or --denoise_input) with the new model.
workflow {
    INPUTS()
    TRAIN_MODEL(INPUTS.out.samples, INPUTS.out.fasta, INPUTS.out.chrom_sizes, INPUTS.out.sequence_fasta,
                INPUTS.out.annotations)
    ch_model_file = TRAIN_MODEL.out.onnx.map { meta, onnx -> onnx }.first()
    if (params.denoise_input) {
        PREPROCESS(samplesFromSheet(params.denoise_input), INPUTS.out.fasta, INPUTS.out.chrom_sizes)
        ch_to_denoise = PREPROCESS.out.insertions
    } else {
        ch_to_denoise = TRAIN_MODEL.out.shallow
    }
    DENOISE_SAMPLES(ch_to_denoise, ch_model_file, '', INPUTS.out.chrom_sizes, INPUTS.out.genome_fasta,
                    INPUTS.out.annotations)
}
