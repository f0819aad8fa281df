#!/usr/bin/env bash
# A second environment whose kernel runs ipykernel 6, so the tests can run the hub under both
# ipykernel 6 and 7 (tests/reliability/test_kernels.py). Called by scripts/bootstrap.sh.
#
# It layers on the main venv instead of installing everything twice: its own site-packages holds
# only ipykernel 6 (and nest_asyncio, which 6 needs), found first on sys.path; a .pth file then
# adds the main venv's site-packages (the project, editable, and every other dependency).
# Cached: rebuilt only when missing, when the main venv moved, or after the main venv's install.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
ENV6=${ENV6:-.venv-ipykernel6}
main_site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
stamp="$ENV6/.stamp-ipykernel6"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$main_site" ] && [ "$stamp" -nt "$VENV/.stamp-install" ]; then
    exit 0
fi
echo "bootstrap: creating $ENV6 (ipykernel 6 over $VENV)"
rm -rf "$ENV6"
"$VENV/bin/python" -m venv --without-pip "$ENV6"
site6=$("$ENV6/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import site; site.addsitedir('$main_site')" > "$site6/_codeur_main_venv.pth"
"$VENV/bin/python" -m pip install -q --no-deps --target "$site6" "ipykernel>=6.25,<7" "nest_asyncio>=1.4"
"$ENV6/bin/python" -c '
import ipykernel, codeur_widgets, jupyter_client, comm
assert ipykernel.__version__.startswith("6."), ipykernel.__version__
'
echo "$main_site" > "$stamp"
