#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright (Playwright's own download cannot work
# here). Install it when missing: apt-get update first (a fresh CI machine has no package lists),
# as root, or through sudo otherwise.
set -eu
CHROMIUM=/usr/bin/chromium
if [ ! -x "$CHROMIUM" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "Chromium is missing and this machine has no apt-get: install Chromium at $CHROMIUM" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "installing Debian's chromium"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "Chromium was not installed at $CHROMIUM" >&2
  exit 1
fi
