#!/usr/bin/env bash
# CI: build the CPU container images (align, peaks, tracks, infer, qc, registry) and run one real pipeline step in each.
#
#   .ci/containers.sh            # on a Debian bookworm machine, as root; prints a timing table at the end
#
# No registry is needed: the base image is made here with debootstrap from the machine's own Debian mirror
# (cached as atacdenoise-base:bookworm), python3 comes from apt inside the images, and pip reaches PyPI with
# the host CA bundle handed to the build as a BuildKit secret (never stored in a layer). train-gpu (CUDA
# PyTorch on a public nvidia/cuda base) is not built here.
#
# The steps chain like the pipeline: tracks simulates a small paired-end sample, align builds a bowtie2 index
# and aligns its FASTQ pair, peaks makes Tn5 insertions and calls MACS3 peaks, tracks bins the insertions,
# registry logs a tiny ONNX model exported on the host (which needs the package and torch: run .ci/install
# first) to a SQLite MLflow registry and resolves models:/tiny@champion to its ONNX file, infer denoises the
# insertions with that file and shows it has neither torch nor MLflow, and qc runs the QC step, the HTML report
# and MultiQC. dockerd is started when none answers and left running.
#
# Environment: BASE_IMAGE (default atacdenoise-base:bookworm, made when missing), DEBIAN_MIRROR (default: the
# bookworm mirror in /etc/apt/sources.list*), CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt),
# WORK_DIR (default: a fresh temporary folder, removed at the end unless KEEP_WORK=1; a given one is kept).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

BASE_IMAGE=${BASE_IMAGE:-atacdenoise-base:bookworm}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
PREFIX=$(sed -n "s/^ *container_prefix *= *'\(.*\)'.*/\1/p" nextflow.config)
TAG=$(sed -n "s/^ *container_tag *= *'\(.*\)'.*/\1/p" nextflow.config)
ROLES=(align peaks tracks infer qc registry)

STEPS=()
SECONDS_TAKEN=()
START=$(date +%s)
CURRENT_STEP=""
WORK_DIR=${WORK_DIR:-}
REMOVE_WORK=""

say() { printf '\n=== %s\n' "$*" >&2; }
die() { printf '.ci/containers.sh: %s\n' "$*" >&2; exit 1; }

on_exit() {
    local rc=$?
    [ -z "$REMOVE_WORK" ] || rm -rf "$WORK_DIR"
    [ "$rc" -eq 0 ] || echo ".ci/containers.sh: FAILED in step '$CURRENT_STEP' (exit $rc)" >&2
}
trap on_exit EXIT

timed() {  # name, command...: run it (set -e stops at its first failing command) and note how long it took
    local name=$1 t0=$(date +%s)
    shift
    CURRENT_STEP=$name
    say "$name"
    "$@"
    STEPS+=("$name")
    SECONDS_TAKEN+=($(( $(date +%s) - t0 )))
}

print_timings() {
    printf '\n%-40s %8s\n' step seconds
    printf '%-40s %8s\n' ---------------------------------------- --------
    local i
    for i in "${!STEPS[@]}"; do printf '%-40s %8s\n' "${STEPS[$i]}" "${SECONDS_TAKEN[$i]}"; done
    printf '%-40s %8s\n' total "$(( $(date +%s) - START ))"
}

# ---------------------------------------------------------------- machine set-up

install_tools() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || missing+=(debootstrap)
    [ ${#missing[@]} -eq 0 ] && return
    [ "$(id -u)" -eq 0 ] || die "needs root to install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

start_docker() {
    docker info >/dev/null 2>&1 && return
    echo "no Docker daemon answers: starting dockerd (log: /var/log/atacdenoise-dockerd.log)" >&2
    nohup dockerd >/var/log/atacdenoise-dockerd.log 2>&1 &
    local i
    for i in $(seq 60); do
        docker info >/dev/null 2>&1 && return
        sleep 1
    done
    tail -n 20 /var/log/atacdenoise-dockerd.log >&2
    die "dockerd did not answer within 60 s"
}

debian_mirror() {  # the bookworm mirror apt uses here (one-line .list or deb822 .sources format)
    [ -z "${DEBIAN_MIRROR:-}" ] || { echo "$DEBIAN_MIRROR"; return; }
    local found
    found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | sed 's/\[[^]]*\]//' | awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }')
    # deb822: one stanza per blank-line-separated block; take the first deb stanza whose Suites has bookworm.
    [ -n "$found" ] || found=$(for f in /etc/apt/sources.list.d/*.sources; do [ -f "$f" ] && { cat "$f"; echo; }; done \
        | awk 'function stanza_end() {
                   if (!done && types ~ /(^| )deb( |$)/ && suites ~ /(^| )bookworm( |$)/ && uri != "") { print uri; done = 1 }
                   types = suites = uri = ""
               }
               /^[ \t]*$/ { stanza_end(); next }
               /^Types:/  { types = $0;  sub(/^Types:[ \t]*/, "", types) }
               /^Suites:/ { suites = $0; sub(/^Suites:[ \t]*/, "", suites) }
               /^URIs:/   { uri = $2 }
               END { stanza_end() }')
    [ -n "$found" ] || die "no bookworm mirror in /etc/apt/sources.list*; set DEBIAN_MIRROR"
    echo "$found"
}

make_base_image() {  # a registry-free Debian base: debootstrap minbase imported as an image (kept as a cache)
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        echo "$BASE_IMAGE exists: kept" >&2
        return
    fi
    [ "$BASE_IMAGE" = atacdenoise-base:bookworm ] || die "base image $BASE_IMAGE not found (docker pull cannot work here)"
    local mirror rootfs
    mirror=$(debian_mirror)
    rootfs=$(mktemp -d /var/tmp/atacdenoise-rootfs.XXXXXX)
    echo "debootstrap --variant=minbase bookworm from $mirror" >&2
    nice debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
        || { tail -n 20 "$rootfs.log" >&2; rm -rf "$rootfs" "$rootfs.log"; die "debootstrap failed"; }
    # The image needs neither the downloaded .debs nor the package lists (containers/Dockerfile runs apt-get update).
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
}

build_image() {  # role
    local ca=()
    [ ! -s "$CA_BUNDLE" ] || ca=(--ca-bundle "$CA_BUNDLE")
    BUILDKIT_PROGRESS=plain nice containers/build.sh --role "$1" --base-image "$BASE_IMAGE" "${ca[@]}"
}

# ---------------------------------------------------------------- one real step per image

in_image() {  # role, command...: run in PREFIX/role:TAG with the work folder at /data, as this user
    local role=$1
    shift
    docker run --rm -u "$(id -u):$(id -g)" -v "$WORK_DIR:/data" -w /data \
        "$PREFIX/$role:$TAG" "$@"
}

need_files() {  # every path (relative to WORK_DIR) exists and is not empty
    local f
    for f in "$@"; do
        [ -s "$WORK_DIR/$f" ] || die "expected output $f is missing or empty"
    done
    echo "outputs present: $*" >&2
}

make_tiny_model() {  # an untrained dilated 1D CNN (4096-bin windows) as ONNX: DENOISE only needs its contract
    python3 -c 'import atacdenoise.models, torch' 2>/dev/null \
        || die "the host needs atacdenoise and torch to export the test model (run .ci/install)"
    python3 - "$WORK_DIR/tiny.onnx" <<'EOF'
import sys
from atacdenoise.models import build_model, dilated1d
from atacdenoise.registry.onnx_export import export_onnx

config = dilated1d.make_config(8, 5, [dilated1d.residual_layer(5, 2)], 4096, 1024)
print(export_onnx(build_model(config), sys.argv[1]))
EOF
    need_files tiny.onnx
}

run_tracks_simulate() {
    in_image tracks atacdenoise simulate --outdir sim --prefix sim --chroms 2 --chrom-length 200000 \
        --fragments 20000 --seed 1
    need_files sim/genome.fa sim/chrom.sizes sim/sim_R1.fastq.gz sim/sim_R2.fastq.gz
}

run_align() {
    in_image align atacdenoise align --fasta sim/genome.fa --build-index bowtie2_index --threads 2
    in_image align atacdenoise align --fastq1 sim/sim_R1.fastq.gz --fastq2 sim/sim_R2.fastq.gz \
        --index bowtie2_index --output aligned.bam --sample sim --threads 2
    need_files aligned.bam aligned.bam.bai
    local mapped
    mapped=$(in_image align samtools view -c -F 4 aligned.bam)
    echo "aligned.bam: $mapped mapped reads" >&2
    [ "$mapped" -gt 10000 ] || die "only $mapped of the 40000 simulated reads aligned"
}

run_peaks() {
    in_image peaks atacdenoise insertions --input aligned.bam --output aligned.insertions.bed.gz --stats
    in_image peaks atacdenoise peaks --input aligned.insertions.bed.gz --chrom-sizes sim/chrom.sizes \
        --out-prefix aligned
    need_files aligned.insertions.bed.gz aligned.narrowPeak
    echo "aligned.narrowPeak: $(wc -l <"$WORK_DIR/aligned.narrowPeak") peaks" >&2
}

run_tracks_bin() {
    in_image tracks atacdenoise bin --input aligned.insertions.bed.gz --chrom-sizes sim/chrom.sizes \
        --out-prefix aligned.coverage
    need_files aligned.coverage.bw aligned.coverage.tracks
}

run_registry() {  # RESOLVE_MODEL's command on a registry made here: the ONNX file it saves is what DENOISE reads
    cat >"$WORK_DIR/register_tiny.py" <<'EOF'
import sys

import mlflow
import mlflow.onnx
import onnx
from mlflow.tracking import MlflowClient

uri, model = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
with mlflow.start_run(experiment_id=mlflow.create_experiment("ci", artifact_location="/data/mlartifacts")):
    mlflow.onnx.log_model(onnx.load(model), name="model", registered_model_name="tiny", save_as_external_data=False)
MlflowClient(uri, registry_uri=uri).set_registered_model_alias("tiny", "champion", "1")
EOF
    in_image registry python register_tiny.py sqlite:////data/mlflow.db tiny.onnx
    in_image registry sh -c 'atacdenoise registry resolve models:/tiny@champion \
        --tracking-uri sqlite:////data/mlflow.db --output model.onnx > model.resolved.json'
    need_files model.onnx model.resolved.json
    grep -q "\"onnx_sha256\": \"$(sha256sum "$WORK_DIR/model.onnx" | cut -d' ' -f1)\"" "$WORK_DIR/model.resolved.json" \
        || die "model.onnx is not the version model.resolved.json names"
}

run_infer() {
    local module
    for module in torch mlflow matplotlib; do
        if in_image infer python -c "import $module" 2>/dev/null; then die "the infer image can import $module"; fi
    done
    echo "infer image: import torch, mlflow, matplotlib fail, as they should" >&2
    in_image infer atacdenoise denoise --input aligned.insertions.bed.gz --model model.onnx \
        --chrom-sizes sim/chrom.sizes --out-prefix aligned --threads 2 --quiet
    need_files aligned.denoised.bw aligned.peakprob.bw
    [ -e "$WORK_DIR/aligned.peaks.narrowPeak" ] || die "expected output aligned.peaks.narrowPeak is missing"
}

run_qc() {  # QC, REPORT and MULTIQC, as their modules call them
    in_image qc atacdenoise qc --input aligned.bam --chrom-sizes sim/chrom.sizes --peaks aligned.narrowPeak \
        --out-prefix qc/aligned
    in_image qc atacdenoise report --denoised aligned.denoised.bw --peakprob aligned.peakprob.bw \
        --peaks aligned.peaks.narrowPeak --provenance aligned.provenance.json --noisy aligned.insertions.bed.gz \
        --chrom-sizes sim/chrom.sizes --output aligned.report.html
    in_image qc sh -c 'cd qc && multiqc --force --quiet .'
    need_files qc/aligned.qc.json aligned.report.html qc/multiqc_report.html
}

# ---------------------------------------------------------------- main

[ -n "$PREFIX" ] && [ -n "$TAG" ] || die "no container_prefix/container_tag in nextflow.config"
timed "install docker.io, debootstrap" install_tools
timed "start dockerd" start_docker
timed "base image ($BASE_IMAGE)" make_base_image
for role in "${ROLES[@]}"; do
    timed "build $PREFIX/$role:$TAG" build_image "$role"
done

if [ -z "$WORK_DIR" ]; then
    WORK_DIR=$(mktemp -d /var/tmp/atacdenoise-containers.XXXXXX)
    [ -n "${KEEP_WORK:-}" ] || REMOVE_WORK=1
fi
mkdir -p "$WORK_DIR"
echo "work folder: $WORK_DIR" >&2
timed "host: export tiny ONNX model" make_tiny_model
timed "tracks: atacdenoise simulate" run_tracks_simulate
timed "align: bowtie2 index + align" run_align
timed "peaks: insertions + MACS3 peaks" run_peaks
timed "tracks: atacdenoise bin" run_tracks_bin
timed "registry: log + resolve a model" run_registry
timed "infer: no torch/mlflow + denoise" run_infer
timed "qc: qc + report + multiqc" run_qc

docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "^($PREFIX/|atacdenoise-base)" >&2 || true
print_timings
