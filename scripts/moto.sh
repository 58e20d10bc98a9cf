# Sourced by scripts/test and scripts/moto: installs (pinned) and runs moto's server on a
# free loopback port. Callers set CACHE.
MOTO_VERSION=5.2.5
CFN_LINT_VERSION=1.58.0
VENV=${SWITCHBOARD_VENV:-$CACHE/venv}
# SAM CLI pins its own boto3 and cfn-lint, so it gets a virtualenv of its own.
SAM_VERSION=1.170.0
SAM_VENV=${SWITCHBOARD_SAM_VENV:-$CACHE/sam-venv}

# Installs the pinned SAM CLI unless already there.
ensure_sam() {
    if [ -x "$SAM_VENV/bin/sam" ] && "$SAM_VENV/bin/sam" --version 2>/dev/null | grep -q "version $SAM_VERSION\$"; then
        return 0
    fi
    echo "==> installing aws-sam-cli==$SAM_VERSION into $SAM_VENV"
    python3 -m venv "$SAM_VENV" || return 1
    "$SAM_VENV/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_VERSION" || return 1
}

# `sam validate --lint` works offline; it only wants a region and some credentials.
sam_validate() {
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 \
        SAM_CLI_TELEMETRY=0 "$SAM_VENV/bin/sam" validate --lint --template template.yaml
}

# Installs the pinned Python tools (moto's server, cfn-lint) unless already there.
ensure_moto() {
    if [ -x "$VENV/bin/moto_server" ] && [ -x "$VENV/bin/cfn-lint" ] &&
        "$VENV/bin/python" -c "
import sys, moto, importlib.metadata as m
sys.exit(moto.__version__ != '$MOTO_VERSION' or m.version('cfn-lint') != '$CFN_LINT_VERSION')" 2>/dev/null; then
        return 0
    fi
    echo "==> installing moto[server]==$MOTO_VERSION and cfn-lint==$CFN_LINT_VERSION into $VENV"
    python3 -m venv "$VENV" || return 1
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" || return 1
}

free_port() {
    "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts moto, waits until it answers, creates the tables and exports the SDK environment.
start_moto() {
    MOTO_PORT=$(free_port)
    MOTO_LOG=${MOTO_LOG:-$CACHE/moto.log}
    # Requests one at a time: see infra/local/moto_server.py.
    "$VENV/bin/python" infra/local/moto_server.py -H 127.0.0.1 -p "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
    MOTO_PID=$!
    for _ in $(seq 1 100); do
        if "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/moto-api/')" 2>/dev/null; then
            break
        fi
        if ! kill -0 "$MOTO_PID" 2>/dev/null; then
            echo "moto_server exited; its log:" >&2; cat "$MOTO_LOG" >&2; return 1
        fi
        sleep 0.1
    done
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
    export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
    export SWITCHBOARD_TEST_DYNAMODB="$AWS_ENDPOINT_URL"
    "$VENV/bin/python" infra/local/create_tables.py "$AWS_ENDPOINT_URL"
    echo "==> moto on $AWS_ENDPOINT_URL (pid $MOTO_PID)"
}

stop_moto() {
    if [ -n "${MOTO_PID:-}" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
        kill "$MOTO_PID" && wait "$MOTO_PID" 2>/dev/null || true
    fi
}
