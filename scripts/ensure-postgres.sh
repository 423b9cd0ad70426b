#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on localhost:5432 for the test suite (install and start
# Debian's if needed). The tests create and drop their own databases.
set -euo pipefail
if pg_isready -q -h localhost -p 5432 2>/dev/null; then exit 0; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
$SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 30); do
  pg_isready -q -h localhost -p 5432 && break
  sleep 1
done
pg_isready -h localhost -p 5432
# Tests connect as postgres over TCP without a password (a throw-away local cluster).
if ! psql -h localhost -U postgres -c "select 1" >/dev/null 2>&1; then
  hba=$(ls /etc/postgresql/"$version"/main/pg_hba.conf)
  echo "host all postgres 127.0.0.1/32 trust" | $SUDO tee -a "$hba" >/dev/null
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi
