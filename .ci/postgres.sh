#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests of `rnnkit tune --storage postgresql://...`.
#
#     . .ci/postgres.sh      # sourced: exports RNNKIT_TEST_POSTGRES_URL, stops the server on exit
#     bash .ci/postgres.sh   # run: leaves the server running and prints the export line
#
# Installs Debian's `postgresql` package when no server binaries are present (apt-get; CI
# runs as root), creates a cluster in a temporary folder, starts it listening on
# 127.0.0.1 only, on a free port, and creates a user and a database with a random
# password. Safe under `set -euo pipefail`; it returns rather than exits when sourced.

rnnkit_postgres_start() {
    local bin port password
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "postgres.sh: installing Debian's postgresql package" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || return 1
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    # The server refuses to run as root: as root, run its tools as the `postgres` user that
    # the package creates; otherwise as the current user.
    rnnkit_as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

    RNNKIT_PG_DATA=$(mktemp -d /tmp/rnnkit-pg.XXXXXX)
    export RNNKIT_PG_DATA RNNKIT_PG_BIN="$bin"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$RNNKIT_PG_DATA"; fi
    chmod 700 "$RNNKIT_PG_DATA"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')

    # Local (socket) connections: trust, but the socket lives in the 0700 data folder, so
    # only the server's user can reach it. TCP connections: password (scram-sha-256).
    rnnkit_as_pg "$bin/initdb" -D "$RNNKIT_PG_DATA/data" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 >/dev/null || return 1
    rnnkit_as_pg "$bin/pg_ctl" -D "$RNNKIT_PG_DATA/data" -l "$RNNKIT_PG_DATA/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$RNNKIT_PG_DATA" \
        start >/dev/null || { cat "$RNNKIT_PG_DATA/server.log" >&2; return 1; }
    rnnkit_as_pg "$bin/psql" -q -h "$RNNKIT_PG_DATA" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE rnnkit LOGIN PASSWORD '$password'" \
        -c "CREATE DATABASE rnnkit_test OWNER rnnkit" || return 1

    export RNNKIT_TEST_POSTGRES_URL="postgresql://rnnkit:$password@127.0.0.1:$port/rnnkit_test"
    echo "postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port," \
         "data in $RNNKIT_PG_DATA" >&2
}

rnnkit_postgres_stop() {
    if [ -n "${RNNKIT_PG_DATA:-}" ] && [ -d "$RNNKIT_PG_DATA/data" ]; then
        rnnkit_as_pg "$RNNKIT_PG_BIN/pg_ctl" -D "$RNNKIT_PG_DATA/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$RNNKIT_PG_DATA"
    fi
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced: the caller's tests see the URL; the server goes when the caller's shell exits.
    rnnkit_postgres_start || return 1
    trap rnnkit_postgres_stop EXIT
else
    set -euo pipefail
    rnnkit_postgres_start
    echo "export RNNKIT_TEST_POSTGRES_URL='$RNNKIT_TEST_POSTGRES_URL'"
    echo "# stop it with: runuser -u postgres -- $RNNKIT_PG_BIN/pg_ctl -D $RNNKIT_PG_DATA/data stop" \
         "&& rm -rf $RNNKIT_PG_DATA" >&2
fi
