#!/usr/bin/env bash
# Install what `make compose-test` needs from Debian's packages: the Docker engine (docker.io:
# dockerd + a docker CLI) and debootstrap (the stand-in images' base, docker/local/README.md).
# Idempotent. Unlike install_browser.sh this fails loudly: compose-test cannot run without them.
set -euo pipefail
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -eq 0 ]; then
    echo "install_docker: dockerd and debootstrap present"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null || { echo "install_docker: need root (or passwordless sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
    SUDO="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
echo "install_docker: installed ${missing[*]}"
