# Sourced by scripts/test: a throw-away PostgreSQL cluster on a free loopback port, for the
# postgres data adapter's tests. Password authentication (SCRAM) like Supabase, and TLS
# with a test CA, so both plaintext and verify-full connections are exercised.
#
# start_postgres exports
#   SWITCHBOARD_TEST_POSTGRES     postgres://sb_test:<password>@127.0.0.1:<port>/sb_test
#   SWITCHBOARD_TEST_POSTGRES_CA  the test CA certificate (PEM file) the server's cert chains to
#   SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS=1  the test server is on loopback, which the adapters
#                                 otherwise refuse to connect to
# stop_postgres stops the server and deletes the cluster.

pg_bin() {
    local dir
    for dir in "${SWITCHBOARD_PG_BIN:-}" "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")" \
        /usr/local/bin /usr/local/pgsql/bin /usr/lib/postgresql/*/bin; do
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

pg_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Runs a command as the cluster's owner: initdb and postgres refuse to run as root.
pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_OWNER" -- "$@"
    else
        "$@"
    fi
}

start_postgres() {
    local bin
    if ! bin=$(pg_bin); then
        echo "error: PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found." >&2
        echo "       Install them (e.g. 'apt-get install postgresql') or set SWITCHBOARD_PG_BIN." >&2
        return 1
    fi
    if [ "$(id -u)" = 0 ]; then
        PG_OWNER=${SWITCHBOARD_PG_USER:-$(getent passwd postgres >/dev/null && echo postgres || echo nobody)}
    else
        PG_OWNER=$(id -un)
    fi
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-pg.XXXXXX")
    local data="$PG_DIR/data" port password
    port=$(pg_free_port)
    password="sb$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"

    # A test CA and a server certificate for 127.0.0.1 / localhost.
    (
        cd "$PG_DIR" &&
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=switchboard-test-ca \
                -keyout ca.key -out ca.crt 2>/dev/null &&
            openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
                -keyout server.key -out server.csr 2>/dev/null &&
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >ext.cnf &&
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                -extfile ext.cnf -out server.crt 2>/dev/null &&
            chmod 600 server.key
    ) || { echo "error: openssl could not make the test certificates" >&2; return 1; }
    if [ "$(id -u)" = 0 ]; then chown -R "$PG_OWNER" "$PG_DIR"; fi

    pg_as_owner "$bin/initdb" -D "$data" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 ||
        { echo "error: initdb failed:" >&2; cat "$PG_DIR/initdb.log" >&2; return 1; }
    # Single-user mode creates the role and database before the server listens (no psql needed).
    printf "CREATE ROLE sb_test LOGIN PASSWORD '%s';\nCREATE DATABASE sb_test OWNER sb_test;\n" "$password" |
        pg_as_owner "$bin/postgres" --single -D "$data" postgres >"$PG_DIR/single.log" 2>&1 ||
        { echo "error: creating the test role failed:" >&2; cat "$PG_DIR/single.log" >&2; return 1; }
    pg_as_owner "$bin/pg_ctl" -D "$data" -l "$PG_DIR/server.log" -w -t 30 start -o \
        "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c ssl=on -c ssl_cert_file=$PG_DIR/server.crt -c ssl_key_file=$PG_DIR/server.key" \
        >/dev/null ||
        { echo "error: PostgreSQL did not start; its log:" >&2; cat "$PG_DIR/server.log" >&2; return 1; }
    PG_BIN=$bin
    export SWITCHBOARD_TEST_POSTGRES="postgres://sb_test:$password@127.0.0.1:$port/sb_test"
    export SWITCHBOARD_TEST_POSTGRES_CA="$PG_DIR/ca.crt"
    export SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS=1
    echo "==> PostgreSQL on 127.0.0.1:$port ($PG_DIR, owner $PG_OWNER)"
}

stop_postgres() {
    if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
        if [ -n "${PG_BIN:-}" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
            pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
        rm -rf "$PG_DIR"
    fi
}
