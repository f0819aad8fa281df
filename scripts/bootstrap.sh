#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine, idempotently:
# system packages (Chromium for browser tests, redis-server for integration tests, Node.js),
# a virtual environment in .venv with the package (editable) and its test tools, and the JS bundle.
# Re-running is cheap: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
fc-list 2>/dev/null | grep -qi dejavu || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi

# The JS bundle: built by npm + esbuild into codeur_widgets/static/.
if [ ! -d js/node_modules ] || [ js/package.json -nt js/node_modules/.stamp ]; then
    echo "bootstrap: npm install"
    (cd js && npm install --no-audit --no-fund --loglevel=error && touch node_modules/.stamp)
fi
(cd js && npm run --silent build)

# Reinstall the package when its metadata changed (editable: sources are live).
stamp="$VENV/.stamp-install"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap: install -e .[dev]"
    # uv resolves and installs the ~190 packages in seconds where pip takes minutes (a fresh CI
    # machine's set-up time); pip stays the fallback when uv cannot be had or fails.
    if "$VENV/bin/python" -m pip install -q "uv>=0.4" &&
        "$VENV/bin/python" -m uv pip install --python "$VENV/bin/python" -q -e ".[dev]"; then
        :
    else
        echo "bootstrap: uv unavailable or failed; installing with pip"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -e ".[dev]"
    fi
    touch "$stamp"
fi

# A second kernel environment with ipykernel 6 (the tests cover ipykernel 6 and 7).
VENV="$VENV" bash scripts/ipykernel6_env.sh
