#!/bin/sh
# Entrypoint of the local PostgreSQL stand-in (ordermesh/postgres:local, built
# by dapr/docker/build-images.sh from Debian's postgresql-15). It honours the
# variables of the official postgres image that compose.yaml and the
# testcontainers harness set, so either image works there:
#   POSTGRES_USER (default postgres): the superuser created at first start
#   POSTGRES_PASSWORD (required): its password; TCP logins use scram-sha-256
#   POSTGRES_DB (default $POSTGRES_USER): a database created at first start
#   PGDATA (default /var/lib/postgresql/data): the cluster, initialised when empty
# It runs as the postgres user (the image's USER); extra arguments go to
# postgres, e.g. `-c log_statement=all`.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
export PGDATA

if [ "${1:-postgres}" != postgres ] && [ "${1#-}" = "${1:-}" ]; then
	exec "$@" # another command, such as psql or bash
fi
if [ "${1:-}" = postgres ]; then shift; fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ]; then
		echo "postgres-entrypoint: POSTGRES_PASSWORD is not set; the cluster is not initialised" >&2
		exit 1
	fi
	echo "postgres-entrypoint: initialising $PGDATA for superuser $POSTGRES_USER, database $POSTGRES_DB"
	mkdir -p "$PGDATA"
	chmod 700 "$PGDATA"
	pwfile=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 --locale=C \
		--auth-local=trust --auth-host=scram-sha-256 >/dev/null
	rm -f "$pwfile"
	# Reachable from other containers, with a password.
	echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
	echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
	if [ "$POSTGRES_DB" != postgres ]; then
		# A server on the Unix socket only, so nothing reaches it over TCP
		# (and no TCP health check passes) before initialisation is over.
		pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
		psql -v ON_ERROR_STOP=1 -q --username="$POSTGRES_USER" --dbname=postgres \
			-c "CREATE DATABASE \"$POSTGRES_DB\""
		pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	fi
	echo "postgres-entrypoint: initialised"
fi

exec postgres -D "$PGDATA" "$@"
