# Sourced by scripts/test: what the console's browser test (tests/tests/suite/console.rs)
# needs, pinned: Playwright for Python (PyPI) in a virtualenv of its own, Debian's chromium
# (Playwright's own browser download is not reachable here, so the test launches the
# system's), and axe-core (npm) for the accessibility checks. Callers set CACHE. Exports
# SWITCHBOARD_CONSOLE_PYTHON, SWITCHBOARD_CHROMIUM and SWITCHBOARD_AXE.
# shellcheck source=scripts/pinned.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"
PLAYWRIGHT_VERSION=1.65.3
AXE_CORE_VERSION=4.14.1
CONSOLE_VENV=${SWITCHBOARD_CONSOLE_VENV:-$CACHE/console-venv}
CONSOLE_NODE_PREFIX=${SWITCHBOARD_CONSOLE_NODE:-$CACHE/node-console}

ensure_console_browser() {
    pip_pinned "$CONSOLE_VENV" playwright "$PLAYWRIGHT_VERSION" || return 1
    local chromium
    chromium=$(command -v chromium || true)
    if [ -z "$chromium" ]; then
        echo "==> installing Debian's chromium (apt-get install chromium)"
        local sudo=()
        if [ "$(id -u)" != 0 ]; then
            command -v sudo >/dev/null || {
                echo "error: chromium is not installed and this user cannot install it: run 'apt-get install chromium' as root" >&2
                return 1
            }
            sudo=(sudo)
        fi
        "${sudo[@]}" apt-get update -qq >/dev/null || return 1
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null || return 1
        chromium=$(command -v chromium) || return 1
    fi
    npm_pinned "$CONSOLE_NODE_PREFIX" axe-core "$AXE_CORE_VERSION" || return 1
    local axe=$CONSOLE_NODE_PREFIX/node_modules/axe-core
    export SWITCHBOARD_CONSOLE_PYTHON="$CONSOLE_VENV/bin/python"
    export SWITCHBOARD_CHROMIUM="$chromium"
    export SWITCHBOARD_AXE="$axe/axe.min.js"
}
