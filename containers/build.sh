#!/usr/bin/env bash
# Build the pipeline's container images: PREFIX/ROLE:TAG, the names nextflow.config uses
# (params.container_prefix / params.container_tag).
#
#   containers/build.sh                                  # CPU images: align peaks tracks infer
#   containers/build.sh --gpu                            # also train-gpu (CUDA PyTorch)
#   containers/build.sh --base-image python:3.11-slim-bookworm --ca-bundle /etc/ssl/certs/ca-certificates.crt
#   containers/build.sh --dry-run                        # print the docker commands only
#
# Environment defaults: BASE_IMAGE, GPU_BASE_IMAGE, CA_BUNDLE, PREFIX, TAG (default: the version in pyproject.toml).
# The CA bundle goes in as a BuildKit secret: pip trusts it while installing, no layer keeps it.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CPU_ROLES=(align peaks tracks infer)
GPU_ROLES=(train-gpu)

BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}
GPU_BASE_IMAGE=${GPU_BASE_IMAGE:-}      # empty: the train-gpu Dockerfile's default (nvidia/cuda)
CA_BUNDLE=${CA_BUNDLE:-}
PREFIX=${PREFIX:-atacdenoise}
TAG=${TAG:-$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -n 1)}
WITH_GPU=""
DRY_RUN=""

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --gpu) WITH_GPU=1 ;;
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

build() {  # role, base image (may be empty: the Dockerfile's default)
    local role=$1 base=$2
    local cmd=(docker build --file "$REPO/containers/$role/Dockerfile" --tag "$PREFIX/$role:$TAG")
    [ -z "$base" ] || cmd+=(--build-arg "BASE_IMAGE=$base")
    [ -z "$CA_BUNDLE" ] || cmd+=(--secret "id=ca_bundle,src=$CA_BUNDLE")
    # Proxies, when set, reach apt and pip during the build only (Docker does not keep these ARGs).
    for var in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
        [ -z "${!var:-}" ] || cmd+=(--build-arg "$var=${!var}")
    done
    cmd+=("$REPO")
    echo "+ DOCKER_BUILDKIT=1 ${cmd[*]}"
    [ -n "$DRY_RUN" ] || DOCKER_BUILDKIT=1 "${cmd[@]}"
}

for role in "${CPU_ROLES[@]}"; do
    build "$role" "$BASE_IMAGE"
done
if [ -n "$WITH_GPU" ]; then
    for role in "${GPU_ROLES[@]}"; do
        build "$role" "$GPU_BASE_IMAGE"
    done
fi
echo "built: $(for r in "${CPU_ROLES[@]}" ${WITH_GPU:+"${GPU_ROLES[@]}"}; do printf '%s/%s:%s ' "$PREFIX" "$r" "$TAG"; done)" >&2
