# Sourced by scripts/test: installs (pinned) the official MCP clients the tests run against
# `dev`: the MCP Python SDK (PyPI) in a virtualenv of its own, and the MCP Inspector (npm),
# whose CLI mode lists tools. Callers set CACHE. Exports SWITCHBOARD_MCP_PYTHON and
# SWITCHBOARD_MCP_INSPECTOR for tests/tests/suite/mcp.rs.
# shellcheck source=scripts/pinned.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"
MCP_SDK_VERSION=2.3.0
MCP_INSPECTOR_VERSION=2.12.0
MCP_VENV=${SWITCHBOARD_MCP_VENV:-$CACHE/mcp-venv}
MCP_NODE_PREFIX=${SWITCHBOARD_MCP_NODE:-$CACHE/node-mcp}

ensure_mcp_clients() {
    pip_pinned "$MCP_VENV" mcp "$MCP_SDK_VERSION" || return 1
    npm_pinned "$MCP_NODE_PREFIX" @modelcontextprotocol/inspector "$MCP_INSPECTOR_VERSION" || return 1
    export SWITCHBOARD_MCP_PYTHON="$MCP_VENV/bin/python"
    export SWITCHBOARD_MCP_INSPECTOR="$MCP_NODE_PREFIX/node_modules/.bin/mcp-inspector"
}
