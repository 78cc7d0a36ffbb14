#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (the work is done by tests/pg_cluster.py, stdlib only).
#   .ci/postgres.sh start DIR   prints postgresql://custseg:PASSWORD@127.0.0.1:PORT/custseg
#   .ci/postgres.sh stop DIR    stops the server and removes DIR
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 tests/pg_cluster.py "$@"
