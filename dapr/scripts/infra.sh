#!/usr/bin/env bash
# Makes the servers the components need listen on their standard local ports:
# Redis (6379: statestore and the default orderpubsub), PostgreSQL (5432:
# orderstore) and, when asked, RabbitMQ (5672: the swapped orderpubsub).
# A server already listening is used as it is; otherwise an installed server is
# started; a server that is not installed is installed first by
# dapr/scripts/install.sh (which says what to run when this user may not).
# Usage: dapr/scripts/infra.sh [redis] [postgres] [rabbitmq]
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
state=$root/.run
mkdir -p "$state"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds what
	local start=$SECONDS
	listening "$1" && return 0
	for _ in $(seq 1 $(($2 * 5))); do
		sleep 0.2
		if listening "$1"; then
			echo "infra: $3 is listening on $1 after $((SECONDS - start))s"
			return 0
		fi
	done
	echo "infra: $3 did not start listening on port $1 within $2s" >&2
	return 1
}

missing() {
	echo "infra: $1 is not running on port $2 and is not installed." >&2
	echo "infra: install it (Debian/Ubuntu: sudo apt-get install -y $3) or start one on port $2, then try again." >&2
	exit 1
}

redis() {
	if listening 6379; then
		echo "infra: Redis is listening on 6379"
		return
	fi
	command -v redis-server >/dev/null || missing Redis 6379 redis-server
	echo "infra: starting Redis on 6379 (data in .run/redis) ..."
	mkdir -p "$state/redis"
	redis-server --port 6379 --bind 127.0.0.1 --daemonize yes --dir "$state/redis" \
		--pidfile "$state/redis/redis.pid" --logfile "$state/redis/redis.log" --appendonly yes --appendfsync everysec >/dev/null
	wait_port 6379 20 Redis
}

postgres() {
	if command -v pg_lsclusters >/dev/null; then
		"$root/dapr/scripts/postgres.sh"
		wait_port 5432 30 PostgreSQL
		return
	fi
	if listening 5432; then
		echo "infra: PostgreSQL is listening on 5432 (not a local Debian cluster: make sure role and database 'ordermesh' exist, password 'ordermesh')"
		return
	fi
	missing PostgreSQL 5432 postgresql
}

rabbitmq() {
	if listening 5672; then
		echo "infra: RabbitMQ is listening on 5672"
		return
	fi
	command -v rabbitmq-server >/dev/null || missing RabbitMQ 5672 rabbitmq-server
	echo "infra: starting RabbitMQ on 5672 (takes a few seconds) ..."
	# Debian's script runs the broker as the rabbitmq user with its own data
	# directory; `-detached` loses its errors, so it runs in the background.
	RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 nohup rabbitmq-server >"$state/rabbitmq.log" 2>&1 &
	wait_port 5672 60 RabbitMQ
}

[ $# -gt 0 ] || set -- redis postgres
"$root/dapr/scripts/install.sh" "$@"
for server in "$@"; do
	case "$server" in
	redis | postgres | rabbitmq) "$server" ;;
	*) echo "usage: $0 [redis] [postgres] [rabbitmq]" >&2; exit 2 ;;
	esac
done
