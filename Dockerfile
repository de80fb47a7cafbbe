# syntax=docker/dockerfile:1
# One image for the binaries (fetcher, executor, simulator, pwctl, and recipe-check to test a recipe file
# against the image's Chromium): `command:` picks one.
# Build: docker build -t podcast-worker --build-arg PODCAST_WORKER_COMMIT=$(git rev-parse --short HEAD) .
#   (docker compose builds it for you and passes PODCAST_WORKER_COMMIT from the environment or .env).
#   .git is not in the build context, so the commit comes in as this build argument; `--version` of every
#   binary shows it (`commit unknown` without it).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole context (.dockerignore drops target/, .git, .env files and secrets/): the manifest names bin/*,
# tests/it, and the recipes/ data directory is taken from here (empty if the repository has none yet).
COPY . .
RUN mkdir -p recipes
# Read at compile time by option_env!("PODCAST_WORKER_COMMIT") (src/config/mod.rs, version_line).
ARG PODCAST_WORKER_COMMIT=unknown
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --workspace --bins \
    && mkdir -p /out \
    && cp target/release/fetcher target/release/executor target/release/simulator target/release/pwctl \
       /out/ \
    && cp target/release/recipe-check /out/

FROM debian:bookworm-slim AS runtime
ARG PODCAST_WORKER_COMMIT=unknown
LABEL org.opencontainers.image.revision=$PODCAST_WORKER_COMMIT
# chromium: the executor's browser (launched as /usr/lib/chromium/chromium, not the /usr/bin wrapper);
# tini: PID 1 that reaps Chromium's orphans and forwards SIGTERM; openssl: the demo's certificate init;
# curl: the compose health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium tini ca-certificates fonts-liberation openssl curl \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 pw \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /app pw \
    && mkdir -p /app/artifacts && chown pw /app/artifacts
COPY --from=build /out/ /usr/local/bin/
COPY --from=build /src/recipes /app/recipes
WORKDIR /app
USER pw
ENV PW_RECIPES_DIR=/app/recipes \
    PW_ARTIFACTS_DIR=/app/artifacts \
    PW_CHROMIUM_PATH=/usr/lib/chromium/chromium \
    PW_LOG_FORMAT=json
EXPOSE 9101 9102 8080
ENTRYPOINT ["/usr/bin/tini", "-g", "--"]
CMD ["executor"]
