#!/usr/bin/env bash
# Installs Debian packages: apt-get update first (a fresh CI machine has no package lists), as
# root, or through sudo otherwise. Fails, saying so, on a machine without apt-get.
set -eu
if ! command -v apt-get >/dev/null 2>&1; then
  echo "this machine has no apt-get: install $* yourself" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing Debian's $*"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
