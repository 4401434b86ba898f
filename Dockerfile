# Multi-stage build: compile in the Rust image, run from a slim Debian with
# only CA certificates, as a non-root user. The migrations are compiled into
# the binary (sqlx::migrate!), so the image needs nothing else.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked && strip target/release/refund-worker

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home refund-worker
COPY --from=build /src/target/release/refund-worker /usr/local/bin/refund-worker
USER 10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/refund-worker"]
CMD ["run"]
