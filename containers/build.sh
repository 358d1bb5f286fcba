#!/usr/bin/env bash
# Build the pipeline's container images: PREFIX/ROLE:TAG, the names nextflow.config uses
# (params.container_prefix / params.container_tag).
#
#   containers/build.sh                                  # CPU images: align peaks tracks infer qc registry
#   containers/build.sh --gpu                            # also train-gpu (CUDA PyTorch)
#   containers/build.sh --base-image debian:bookworm-slim --ca-bundle /etc/ssl/certs/ca-certificates.crt
#   containers/build.sh --role peaks --role infer        # only these images
#   containers/build.sh --dry-run                        # print the docker commands only
#
# Environment defaults: BASE_IMAGE, GPU_BASE_IMAGE, CA_BUNDLE, PREFIX, TAG (default: the version in pyproject.toml),
# DOCKER (the client; default: the first of docker, /usr/bin/docker that can build with BuildKit).
# The CA bundle goes in as a BuildKit secret: pip trusts it while installing, no layer keeps it.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CPU_ROLES=(align peaks tracks infer qc registry)
GPU_ROLES=(train-gpu)

BASE_IMAGE=${BASE_IMAGE:-}              # empty: containers/Dockerfile's default (debian:bookworm-slim)
GPU_BASE_IMAGE=${GPU_BASE_IMAGE:-}      # empty: the train-gpu Dockerfile's default (nvidia/cuda)
CA_BUNDLE=${CA_BUNDLE:-}
PREFIX=${PREFIX:-atacdenoise}
TAG=${TAG:-$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -n 1)}
WITH_GPU=""
DRY_RUN=""
ONLY_ROLES=()

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --gpu) WITH_GPU=1 ;;
        --role) ONLY_ROLES+=("$2"); shift ;;
        --base-image) BASE_IMAGE=$2; shift ;;
        --gpu-base-image) GPU_BASE_IMAGE=$2; shift ;;
        --ca-bundle) CA_BUNDLE=$2; shift ;;
        --prefix) PREFIX=$2; shift ;;
        --tag) TAG=$2; shift ;;
        --dry-run) DRY_RUN=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

[ -n "$TAG" ] || { echo "build.sh: no --tag given and no version found in pyproject.toml" >&2; exit 2; }
if [ -n "$CA_BUNDLE" ] && [ ! -s "$CA_BUNDLE" ]; then
    echo "build.sh: CA bundle $CA_BUNDLE does not exist or is empty" >&2; exit 2
fi

# A client that builds with BuildKit (RUN --mount, --secret): one with the buildx plugin, or one older
# than Docker 23 (BuildKit built in). Docker 23+ without buildx refuses DOCKER_BUILDKIT=1.
buildkit_client() {
    local client major
    for client in ${DOCKER:-} docker /usr/bin/docker; do
        command -v "$client" >/dev/null 2>&1 || continue
        "$client" buildx version >/dev/null 2>&1 && { echo "$client"; return; }
        major=$("$client" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
        [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null && { echo "$client"; return; }
    done
    echo "build.sh: no docker client that can build with BuildKit (install the buildx plugin, or set DOCKER)" >&2
    return 1
}
if [ -n "$DRY_RUN" ]; then DOCKER=${DOCKER:-docker}; else DOCKER=$(buildkit_client); fi

# The CPU roles: one containers/Dockerfile, and what each role needs as its build args (the Dockerfile says
# what each arg does). PYTHON_DEPENDENCIES are containers/requirements.py options (versions from pyproject.toml).
role_build_args() {  # role: prints one NAME=VALUE a line
    case $1 in
        # `atacdenoise align` only runs cutadapt, bowtie2 and samtools: the package needs none of its Python dependencies.
        align) echo "APT_PACKAGES=bowtie2 samtools cutadapt" ;;
        # MACS3 and cykhash have no wheels: they compile in the wheels stage (gcc there only); samtools and tabix
        # for BAM and BED handling.
        peaks) echo "APT_PACKAGES=samtools tabix"
               echo "BUILD_PACKAGES=gcc libc6-dev python3-dev zlib1g-dev"
               echo "PYTHON_DEPENDENCIES=--without onnxruntime --without onnx --without matplotlib --extra peaks" ;;
        # Only what SIMULATE, BIN and WINDOWS import: the core dependencies but onnx and onnxruntime (DENOISE,
        # infer image) and matplotlib (plots: qc image). MACS3 (sdist only) is the [peaks] extra (peaks image).
        tracks) echo "PYTHON_DEPENDENCIES=--without onnxruntime --without onnx --without matplotlib" ;;
        # Denoising only (DENOISE): what `atacdenoise denoise` imports, wheels all (pybigtools writes the peaks'
        # bigBed, isal compresses the bigWigs, onnx widens the model's graph), and the bundled models (denoise's default when no --model is
        # given). No torch, no MLflow, no plotting: a registry model reaches DENOISE as the ONNX file RESOLVE_MODEL downloaded (registry image); the
        # report and QC run in the qc image.
        infer) echo "PYTHON_DEPENDENCIES=--only numpy --only pysam --only pyBigWig --only pybigtools --only isal --only tqdm --only onnxruntime --only onnx"
               echo "BUNDLED=models"
               echo "ABSENT_MODULES=torch mlflow matplotlib" ;;
        # The core dependencies (matplotlib for the plots) but onnxruntime, plus [qc] (MultiQC, which alone brings
        # ~1 GB: plotly, kaleido, polars, pyarrow; kept apart so the infer image stays small). The bundled models'
        # cards: the report shows the model card.
        qc) echo "PYTHON_DEPENDENCIES=--without onnxruntime --without onnx --extra qc"
            echo "BUNDLED=models" ;;
        # The MLflow registry (REGISTER_MODEL, RESOLVE_MODEL): the core dependencies (onnx among them) and
        # [registry] (mlflow, boto3 for S3 artifacts, psycopg for PostgreSQL backends); all of registry/ (serve.sh
        # for `atacdenoise registry serve`, and the bundled models).
        registry) echo "PYTHON_DEPENDENCIES=--extra registry"
                  echo "BUNDLED=all" ;;
        *) return 1 ;;
    esac
}

dockerfile() {  # role
    case " ${GPU_ROLES[*]} " in
        *" $1 "*) echo "$REPO/containers/$1/Dockerfile" ;;
        *) echo "$REPO/containers/Dockerfile" ;;
    esac
}

build() {  # role, base image (may be empty: the Dockerfile's default)
    local role=$1 base=$2 arg
    local cmd=("$DOCKER" build --file "$(dockerfile "$role")" --tag "$PREFIX/$role:$TAG")
    [ -z "$base" ] || cmd+=(--build-arg "BASE_IMAGE=$base")
    while IFS= read -r arg; do cmd+=(--build-arg "$arg"); done < <(role_build_args "$role" || true)
    [ -z "$CA_BUNDLE" ] || cmd+=(--secret "id=ca_bundle,src=$CA_BUNDLE")
    # Proxies, when set, reach apt and pip during the build only (Docker does not keep these ARGs).
    for var in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
        [ -z "${!var:-}" ] || cmd+=(--build-arg "$var=${!var}")
    done
    cmd+=("$REPO")
    # Quoted as a shell would need it (build args hold spaces), so the line can be pasted.
    echo "+ DOCKER_BUILDKIT=1 $(printf '%q ' "${cmd[@]}")"
    [ -n "$DRY_RUN" ] || DOCKER_BUILDKIT=1 "${cmd[@]}"
}

# --role picks images by name (train-gpu included); otherwise the CPU images, plus train-gpu with --gpu.
if [ ${#ONLY_ROLES[@]} -gt 0 ]; then
    ROLES=("${ONLY_ROLES[@]}")
else
    ROLES=("${CPU_ROLES[@]}" ${WITH_GPU:+"${GPU_ROLES[@]}"})
fi
for role in "${ROLES[@]}"; do
    case " ${CPU_ROLES[*]} ${GPU_ROLES[*]} " in
        *" $role "*) ;;
        *) echo "build.sh: no image role '$role' (roles: ${CPU_ROLES[*]} ${GPU_ROLES[*]})" >&2; exit 2 ;;
    esac
done
for role in "${ROLES[@]}"; do
    case " ${GPU_ROLES[*]} " in
        *" $role "*) build "$role" "$GPU_BASE_IMAGE" ;;
        *) build "$role" "$BASE_IMAGE" ;;
    esac
done
echo "${DRY_RUN:+would have }built: $(for r in "${ROLES[@]}"; do printf '%s/%s:%s ' "$PREFIX" "$r" "$TAG"; done)" >&2
