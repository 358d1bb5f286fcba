#!/bin/sh
# apt-get install for containers/Dockerfile: the packages named (none: nothing to do), without recommends,
# and nothing else left in the layer. apt-get clean: a debootstrap base has no docker-clean hook, and the
# downloaded .debs would stay in the layer (~90 MB); the package lists go too (each step runs apt-get update).
set -eu
[ $# -gt 0 ] || exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "$@"
apt-get clean
rm -rf /var/lib/apt/lists/*
