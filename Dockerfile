# syntax=docker/dockerfile:1
# The emulator as one small image: SQLite under /data by default, or PostgreSQL given
# MTD_EMULATOR_DATABASE_URL. It listens on 0.0.0.0:8080, so an admin key is required:
#   docker run -p 8080:8080 -v mtd-data:/data -e MTD_EMULATOR_ADMIN_KEY=change-me intune-mtd-emulator

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src src
COPY migrations migrations
COPY openapi.yaml openapi.yaml
COPY openapi openapi
RUN touch src/main.rs src/lib.rs && cargo build --release --locked \
    && cp target/release/intune-mtd-emulator /usr/local/bin/intune-mtd-emulator

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin emulator \
    && mkdir -p /data && chown emulator /data
COPY --from=build /usr/local/bin/intune-mtd-emulator /usr/local/bin/intune-mtd-emulator
ENV MTD_EMULATOR_LISTEN=0.0.0.0:8080 \
    MTD_EMULATOR_HTTPS_LISTEN=0.0.0.0:8443 \
    MTD_EMULATOR_DATABASE_URL=sqlite:///data/emulator.db \
    MTD_EMULATOR_LOG_FORMAT=json
VOLUME /data
USER emulator
WORKDIR /data
EXPOSE 8080 8443
# Readiness over bash's /dev/tcp, so the image needs no HTTP client.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /readyz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["intune-mtd-emulator"]
CMD ["serve"]
