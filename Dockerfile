# ralf's container image (docs/operations.md, "Container image").
#
#   docker build -t ralf .
#   docker run -p 3000:3000 -v ralf-data:/var/lib/ralf ralf
#
# Stage 1 builds the binary (stripped, its symbols split off into ralf.debug by
# scripts/release-binary.sh), its man page and shell completions; the last stage is a small
# Debian with what tasks run (git, ansible-core, bubblewrap, ssh) and ralf as a non-root user.
# The symbols of the same build, for backtraces and gdb (docs/operations.md, "Symbols"):
#
#   docker build --target symbols --output type=local,dest=. .   # writes ./ralf.debug

FROM rust:1-trixie AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/release-binary.sh /dist \
    && install -D /dist/ralf /out/usr/bin/ralf \
    && scripts/package-assets /out/usr/bin/ralf \
    && install -D -m 644 packaging/generated/ralf.1.gz /out/usr/share/man/man1/ralf.1.gz \
    && install -D -m 644 packaging/generated/completions/ralf /out/usr/share/bash-completion/completions/ralf \
    && install -D -m 644 packaging/generated/completions/_ralf /out/usr/share/zsh/vendor-completions/_ralf \
    && install -D -m 644 packaging/generated/completions/ralf.fish /out/usr/share/fish/vendor_completions.d/ralf.fish

FROM scratch AS symbols
COPY --from=build /dist/ralf.debug /

FROM debian:trixie-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates git openssh-client bubblewrap python3 ansible-core tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/ralf --create-home ralf \
    && chmod 0700 /var/lib/ralf
COPY --from=build /out/ /
USER ralf
WORKDIR /var/lib/ralf
# Two malloc arenas, not glibc's eight per core: each would keep free memory of its own for
# SQLite's reader threads, and the server's memory would creep up; and buffers of 128 KiB and
# more always mapped on their own, so they go back to the system when freed (docs/operations.md,
# "Memory").
ENV MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=131072 \
    RALF_DATA_DIR=/var/lib/ralf \
    RALF_INTERFACE=0.0.0.0 \
    RALF_PORT=3000
VOLUME /var/lib/ralf
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["ralf", "ping", "--url", "http://127.0.0.1:3000"]
ENTRYPOINT ["tini", "--", "ralf"]
CMD ["server"]
