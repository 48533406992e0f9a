#!/usr/bin/env bash
# Makes the PostgreSQL that orderstore uses ready on this machine: starts the
# Debian cluster if it is down, and creates the `ordermesh` role (with a
# password: TCP logins use scram-sha-256) and database if they are missing.
# Usage: dapr/scripts/postgres.sh [role] [password] [database]
set -euo pipefail

role=${1:-ordermesh}
password=${2:-ordermesh}
database=${3:-ordermesh}

as_postgres() {
	if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

if ! command -v pg_lsclusters >/dev/null; then
	echo "postgres: PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2
	exit 1
fi

cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1, $2, $4}')
read -r version name status <<<"$cluster"
if [ -z "${version:-}" ]; then
	echo "postgres: no PostgreSQL cluster exists (pg_createcluster 15 main)" >&2
	exit 1
fi
if [ "$status" != online ]; then
	echo "postgres: starting cluster $version/$name ..."
	pg_ctlcluster "$version" "$name" start
fi

for _ in $(seq 1 50); do
	as_postgres psql -qtAc 'select 1' >/dev/null 2>&1 && break
	sleep 0.2
done

as_postgres psql -v ON_ERROR_STOP=1 -qtA >/dev/null <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN
    CREATE ROLE "$role" LOGIN PASSWORD '$password';
  ELSE
    ALTER ROLE "$role" LOGIN PASSWORD '$password';
  END IF;
END
\$\$;
SQL
if [ -z "$(as_postgres psql -qtAc "SELECT 1 FROM pg_database WHERE datname = '$database'")" ]; then
	as_postgres createdb -O "$role" "$database"
fi
echo "postgres: $role@localhost:5432/$database is ready"
