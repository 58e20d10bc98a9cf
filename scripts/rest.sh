# Sourced by scripts/test: installs (pinned) json-server from npm into the cache and runs
# the rest data adapter's test upstreams on free loopback ports. Callers set CACHE and run
# from the repository root. Each server gets its own copy of tests/fixtures/rest/db.json
# (json-server writes to its file), in a temporary directory removed on stop.
# shellcheck source=scripts/pinned.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"
JSON_SERVER_VERSION=0.17.4
NODE_PREFIX=${SWITCHBOARD_NODE:-$CACHE/node}
JSON_SERVER=$NODE_PREFIX/node_modules/.bin/json-server
REST_FIXTURES=$PWD/tests/fixtures/rest
REST_PIDS=()
REST_DIR=

# Installs json-server@$JSON_SERVER_VERSION into $NODE_PREFIX unless already there.
ensure_json_server() {
    npm_pinned "$NODE_PREFIX" json-server "$JSON_SERVER_VERSION"
}

rest_free_port() {
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

# Starts one json-server named $1 with the options that follow; sets REST_URL.
start_json_server() {
    local name=$1 port pid
    shift
    port=$(rest_free_port) || return 1
    cp "$REST_FIXTURES/db.json" "$REST_DIR/$name.json" || return 1
    # The source goes first: --middlewares takes every argument after it. --fks: no field
    # of the fixtures ends with it, so a DELETE never cascades to other collections.
    (cd "$REST_DIR" && exec "$JSON_SERVER" "$REST_DIR/$name.json" --host 127.0.0.1 \
        --port "$port" --quiet --fks _switchboard_no_fk "$@") >"$REST_DIR/$name.log" 2>&1 &
    pid=$!
    REST_PIDS+=("$pid")
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            REST_URL="http://127.0.0.1:$port"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "json-server '$name' did not start; its log:" >&2
    cat "$REST_DIR/$name.log" >&2
    return 1
}

# The normal server (bearer auth on /secure_* and for writes to /guarded_*, /slow_* 150 ms
# late), a slow one (every answer 3 s late) and a
# failing one (500s, 503s on /flaky, request counts), exported for the tests.
start_rest_servers() {
    # The servers listen on loopback, which the rest adapter refuses to call otherwise.
    export SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS=1
    REST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-rest.XXXXXX") || return 1
    start_json_server normal --middlewares "$REST_FIXTURES/auth.js" || return 1
    export SWITCHBOARD_TEST_REST=$REST_URL
    start_json_server slow --delay 3000 || return 1
    export SWITCHBOARD_TEST_REST_SLOW=$REST_URL
    start_json_server failing --middlewares "$REST_FIXTURES/failing.js" || return 1
    export SWITCHBOARD_TEST_REST_FAILING=$REST_URL
    echo "==> json-server on $SWITCHBOARD_TEST_REST (slow $SWITCHBOARD_TEST_REST_SLOW, failing $SWITCHBOARD_TEST_REST_FAILING)"
}

stop_rest_servers() {
    local pid
    for pid in "${REST_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" && wait "$pid" 2>/dev/null || true
        fi
    done
    REST_PIDS=()
    if [ -n "$REST_DIR" ]; then
        rm -rf "$REST_DIR"
    fi
}
