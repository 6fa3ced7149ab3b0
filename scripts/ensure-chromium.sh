#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright (Playwright's own download cannot work
# here). Install it when missing.
set -eu
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
