# Sourced by the test scripts: installs (pinned) Stoplight Prism from npm into the cache and runs
# its mock servers of vendors' OpenAPI documents (tests/fixtures/vendor-openapi/: cut out of the
# vendors' published documents by extract.py there, or written from the vendor's reference where
# it publishes none, as its README says) on free loopback ports. Callers set CACHE and
# run from the repository root. The logs are in a temporary directory removed on stop.
# shellcheck source=scripts/pinned.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"
PRISM_VERSION=5.16.0
NODE_PREFIX=${SWITCHBOARD_NODE:-$CACHE/node}
PRISM=$NODE_PREFIX/node_modules/.bin/prism
VENDOR_OPENAPI=$PWD/tests/fixtures/vendor-openapi
PRISM_PIDS=()
PRISM_DIR=

# Installs @stoplight/prism-cli@$PRISM_VERSION into $NODE_PREFIX unless already there.
ensure_prism() {
    npm_pinned "$NODE_PREFIX" @stoplight/prism-cli "$PRISM_VERSION"
}

prism_free_port() {
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

# Starts one Prism mock server named $1 on the OpenAPI document $2; sets PRISM_URL once the port
# answers (Prism reads and resolves the whole document first: up to 60 s allowed).
start_prism() {
    local name=$1 doc=$2 port pid
    if [ -z "$PRISM_DIR" ]; then
        PRISM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-prism.XXXXXX") || return 1
    fi
    port=$(prism_free_port) || return 1
    "$PRISM" mock -h 127.0.0.1 -p "$port" "$doc" >"$PRISM_DIR/$name.log" 2>&1 &
    pid=$!
    PRISM_PIDS+=("$pid")
    for _ in $(seq 1 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            PRISM_URL="http://127.0.0.1:$port"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "prism '$name' did not start; its log:" >&2
    cat "$PRISM_DIR/$name.log" >&2
    return 1
}

# The vendors' mocks, exported for the tests.
start_vendor_mocks() {
    start_prism twilio "$VENDOR_OPENAPI/twilio-messages.json" || return 1
    export SWITCHBOARD_TEST_TWILIO=$PRISM_URL
    start_prism google-calendar "$VENDOR_OPENAPI/google-calendar.json" || return 1
    export SWITCHBOARD_TEST_GOOGLE_CALENDAR=$PRISM_URL
    start_prism salesforce "$VENDOR_OPENAPI/salesforce-leads.json" || return 1
    export SWITCHBOARD_TEST_SALESFORCE=$PRISM_URL
    start_prism zoom "$VENDOR_OPENAPI/zoom-meetings.json" || return 1
    export SWITCHBOARD_TEST_ZOOM=$PRISM_URL
    echo "==> prism mocks: twilio on $SWITCHBOARD_TEST_TWILIO, google calendar on $SWITCHBOARD_TEST_GOOGLE_CALENDAR, salesforce on $SWITCHBOARD_TEST_SALESFORCE, zoom on $SWITCHBOARD_TEST_ZOOM"
}

stop_prisms() {
    local pid
    for pid in "${PRISM_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" && wait "$pid" 2>/dev/null || true
        fi
    done
    PRISM_PIDS=()
    if [ -n "$PRISM_DIR" ]; then
        rm -rf "$PRISM_DIR"
    fi
    PRISM_DIR=
}
