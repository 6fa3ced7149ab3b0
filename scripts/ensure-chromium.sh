#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright (Playwright's own download cannot work
# here). Install it when missing (scripts/apt-install.sh).
set -eu
CHROMIUM=/usr/bin/chromium
if [ ! -x "$CHROMIUM" ]; then
  "$(dirname "$0")/apt-install.sh" chromium
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "Chromium was not installed at $CHROMIUM" >&2
  exit 1
fi
