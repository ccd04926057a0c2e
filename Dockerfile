# syntax=docker/dockerfile:1
# The three images of the Helm chart, from one multi-stage build (BuildKit):
#   docker build --target ingest    -t customersignal/ingest:0.1.0 .
#   docker build --target evaluator -t customersignal/evaluator:0.1.0 .
#   docker build --target operator  -t customersignal/operator:0.1.0 .
# Each target compiles only its own binary. The binaries read no files of their own (TLS roots
# come from the base image), so they run on distroless as UID 65532 with a read-only root.

FROM rust:1.95-bookworm AS source
WORKDIR /src
COPY . .

# One builder per binary so `--target X` compiles X only; the cache mounts share the crates
# and the target directory between them and across builds.
FROM source AS build-ingest
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ingest \
    && install -D -m 0755 target/release/ingest /out/ingest

FROM source AS build-evaluator
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin evaluator \
    && install -D -m 0755 target/release/evaluator /out/evaluator

FROM source AS build-operator
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin operator \
    && install -D -m 0755 target/release/operator /out/operator

# glibc, libgcc and CA certificates; Debian 12 like the builder. Pin by digest in production.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.vendor="CustomerSignal" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532

FROM runtime AS ingest
LABEL org.opencontainers.image.title="customersignal-ingest" \
      org.opencontainers.image.description="CustomerSignal event intake (HTTP to NATS JetStream)"
COPY --from=build-ingest /out/ingest /usr/local/bin/ingest
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ingest"]

FROM runtime AS evaluator
LABEL org.opencontainers.image.title="customersignal-evaluator" \
      org.opencontainers.image.description="CustomerSignal evaluator (JetStream to ClickHouse, rules, webhooks)"
COPY --from=build-evaluator /out/evaluator /usr/local/bin/evaluator
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/evaluator"]
CMD ["run"]

FROM runtime AS operator
LABEL org.opencontainers.image.title="customersignal-operator" \
      org.opencontainers.image.description="CustomerSignal Kubernetes operator"
COPY --from=build-operator /out/operator /usr/local/bin/operator
EXPOSE 9091
ENTRYPOINT ["/usr/local/bin/operator"]
CMD ["run"]
