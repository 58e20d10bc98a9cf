# Sourced by scripts/test: installs (pinned) the official MCP clients the tests run against
# `dev`: the MCP Python SDK (PyPI) in a virtualenv of its own, and the MCP Inspector (npm),
# whose CLI mode lists tools. Callers set CACHE. Exports SWITCHBOARD_MCP_PYTHON and
# SWITCHBOARD_MCP_INSPECTOR for tests/tests/suite/mcp.rs.
MCP_SDK_VERSION=2.3.0
MCP_INSPECTOR_VERSION=2.12.0
MCP_VENV=${SWITCHBOARD_MCP_VENV:-$CACHE/mcp-venv}
MCP_NODE_PREFIX=${SWITCHBOARD_MCP_NODE:-$CACHE/node-mcp}

ensure_mcp_clients() {
    if ! "$MCP_VENV/bin/python" -c "
import sys, importlib.metadata as m
sys.exit(m.version('mcp') != '$MCP_SDK_VERSION')" 2>/dev/null; then
        echo "==> installing mcp==$MCP_SDK_VERSION (the MCP Python SDK) into $MCP_VENV"
        python3 -m venv "$MCP_VENV" || return 1
        "$MCP_VENV/bin/pip" install --quiet --disable-pip-version-check "mcp==$MCP_SDK_VERSION" || return 1
    fi
    local pkg=$MCP_NODE_PREFIX/node_modules/@modelcontextprotocol/inspector/package.json
    if [ "$(node -p "require('$pkg').version" 2>/dev/null)" != "$MCP_INSPECTOR_VERSION" ]; then
        if ! command -v npm >/dev/null; then
            echo "error: npm is not installed; the MCP Inspector test needs Node.js (20 or newer)" >&2
            return 1
        fi
        echo "==> installing @modelcontextprotocol/inspector@$MCP_INSPECTOR_VERSION into $MCP_NODE_PREFIX"
        mkdir -p "$MCP_NODE_PREFIX" || return 1
        npm install --prefix "$MCP_NODE_PREFIX" --no-audit --no-fund --loglevel=error \
            "@modelcontextprotocol/inspector@$MCP_INSPECTOR_VERSION" || return 1
    fi
    export SWITCHBOARD_MCP_PYTHON="$MCP_VENV/bin/python"
    export SWITCHBOARD_MCP_INSPECTOR="$MCP_NODE_PREFIX/node_modules/.bin/mcp-inspector"
}
