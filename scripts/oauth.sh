# Sourced by the test scripts: installs (pinned) oidc-provider from npm into the cache and runs
# tests/fixtures/oauth/provider.mjs, a real OAuth 2.0 / OpenID provider with Switchboard's test
# clients (client credentials, rotating refresh tokens, the JWT-bearer grant of Google service
# accounts; see the top of provider.mjs), on a free loopback port. Callers set CACHE and run from
# the repository root. Its log is in a temporary directory removed on stop.
# tests/fixtures/oauth/selfcheck.mjs checks the provider by hand; nothing here runs it.
# shellcheck source=scripts/pinned.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"
# oidc-provider 9 warns "Unsupported runtime" on Node 20 (it wants 22 LTS), and runs.
OIDC_PROVIDER_VERSION=9.13.3
# provider.mjs imports jose (a dependency of oidc-provider) itself: pinned too.
OIDC_JOSE_VERSION=6.2.19
NODE_PREFIX=${SWITCHBOARD_NODE:-$CACHE/node}
OAUTH_FIXTURES=$PWD/tests/fixtures/oauth
OAUTH_PID=
OAUTH_DIR=

# Installs oidc-provider@$OIDC_PROVIDER_VERSION and jose@$OIDC_JOSE_VERSION into $NODE_PREFIX
# unless already there.
ensure_oauth_provider() {
    npm_pinned "$NODE_PREFIX" oidc-provider "$OIDC_PROVIDER_VERSION" || return 1
    npm_pinned "$NODE_PREFIX" jose "$OIDC_JOSE_VERSION"
}

oauth_free_port() {
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

# Starts the provider; exports SWITCHBOARD_TEST_OAUTH, its issuer (http://127.0.0.1:PORT), once
# it serves its discovery document.
start_oauth_provider() {
    local port url
    OAUTH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-oauth.XXXXXX") || return 1
    port=$(oauth_free_port) || return 1
    url="http://127.0.0.1:$port"
    OIDC_NODE_MODULES="$NODE_PREFIX/node_modules" node "$OAUTH_FIXTURES/provider.mjs" "$port" \
        >"$OAUTH_DIR/provider.log" 2>&1 &
    OAUTH_PID=$!
    for _ in $(seq 1 100); do
        if node -e 'fetch(process.argv[1]).then((r) => r.json()).then((d) => process.exit(d.issuer === process.argv[2] ? 0 : 1), () => process.exit(1))' \
            "$url/.well-known/openid-configuration" "$url" 2>/dev/null; then
            export SWITCHBOARD_TEST_OAUTH=$url
            echo "==> oidc-provider on $SWITCHBOARD_TEST_OAUTH (pid $OAUTH_PID)"
            return 0
        fi
        if ! kill -0 "$OAUTH_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "oidc-provider did not start; its log:" >&2
    cat "$OAUTH_DIR/provider.log" >&2
    return 1
}

stop_oauth_provider() {
    if [ -n "$OAUTH_PID" ] && kill -0 "$OAUTH_PID" 2>/dev/null; then
        kill "$OAUTH_PID" && wait "$OAUTH_PID" 2>/dev/null || true
    fi
    OAUTH_PID=
    if [ -n "$OAUTH_DIR" ]; then
        rm -rf "$OAUTH_DIR"
    fi
    OAUTH_DIR=
}
