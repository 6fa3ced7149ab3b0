#!/bin/sh
# Builds connectx.intake._cardscan (src/connectx/intake/cardscan.c, the card-number pre-scan of
# webhook bodies) next to its source for the venv's Python: the C compiler and Python's headers,
# no package. Without them it says so and stops there: intake then masks in Python, slower
# (src/connectx/intake/cardscan.py). Called by `make install`, which runs it again when the
# source changes.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${1:-.venv/bin/python}
src=src/connectx/intake/cardscan.c
out=src/connectx/intake/_cardscan$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
include=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
CC=${CC:-cc}
if ! command -v "$CC" >/dev/null 2>&1 || [ ! -f "$include/Python.h" ]; then
    echo "note: no C compiler ($CC) or Python headers: the card-number pre-scan is not built;" \
        "webhook bodies are masked in Python, slower" >&2
    exit 0
fi
"$CC" -O3 -fPIC -shared -Wall -Wextra -I"$include" -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
