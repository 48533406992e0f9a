#!/bin/sh
# Entrypoint of the local RabbitMQ stand-in (ordermesh/rabbitmq:local, built by
# dapr/docker/build-images.sh from Debian's rabbitmq-server). It runs the broker in
# the foreground as the rabbitmq user (the image's USER), logging to stdout,
# like the official rabbitmq image; Debian's own wrapper would log to files.
# /etc/rabbitmq/rabbitmq.conf lets guest/guest in from other containers, as
# the official image does.
set -eu
cd /var/lib/rabbitmq
export HOME=/var/lib/rabbitmq
if [ $# -gt 0 ] && [ "$1" != rabbitmq-server ]; then
	exec "$@" # another command, such as rabbitmq-diagnostics or bash
fi
exec /usr/lib/rabbitmq/bin/rabbitmq-server
