# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run from a slim Debian with
# only CA certificates, as a non-root user. The migrations are compiled into
# the binary (sqlx::migrate!), so the image needs nothing else.
#
# The cargo registry and the target directory are BuildKit cache mounts, so an
# edit rebuilds only this crate, not its ~400 dependencies.
FROM rust:1.95-trixie AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY vendor ./vendor
COPY src ./src
COPY migrations ./migrations
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin refund-worker \
 && cp target/release/refund-worker /refund-worker \
 && strip /refund-worker

# Debian 13 (trixie): in regular security support.
FROM debian:trixie-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home refund-worker
COPY --from=build /refund-worker /usr/local/bin/refund-worker
USER 10001
EXPOSE 8080
# Liveness of `run` on the default HTTP_LISTEN port (no curl in the image:
# bash's /dev/tcp). Other commands (`migrate`, `sandbox`) set their own or none.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200 OK' <&3"]
ENTRYPOINT ["/usr/local/bin/refund-worker"]
CMD ["run"]
