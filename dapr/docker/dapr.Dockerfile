# A pinned Dapr binary (dapr/toolchain/build.sh: static) FROM scratch, laid
# out like the official daprio/daprd and daprio/sentry images: the binary at
# /<name>, working folder /, no entrypoint, so compose's `command: ["./daprd",
# ...]` (or ./sentry) runs the same with either image. `make images` builds
# ordermesh/daprd and ordermesh/sentry with it, the binary alone as the build
# context, e.g.
#   DOCKER_BUILDKIT=0 docker build -f dapr/docker/dapr.Dockerfile --build-arg BINARY=daprd \
#     -t ordermesh/daprd:1.18.2 .images/daprd
FROM scratch
ARG BINARY
ARG DAPR_VERSION
LABEL org.opencontainers.image.title="${BINARY} ${DAPR_VERSION} (ordermesh local build)"
COPY ${BINARY} /${BINARY}
WORKDIR /
# As the official images: distroless's nonroot user.
USER 65532:65532
