# Koekje in a container: built with cgo (SQLite), run as a non-root user,
# the database on a volume.
#   docker build --build-arg VERSION=v1.2.0 --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg BUILT=$(git log -1 --format=%cI) -t koekje:v1.2.0 .
#   docker run -p 8080:8080 -v koekje-data:/data -e KOEKJE_ADMIN_TOKEN=… \
#     -e KOEKJE_PUBLIC_URL=https://consent.example.nl koekje:v1.2.0
# KOEKJE_PUBLIC_URL is needed: the transparency log is named after it for
# life, and a new log is never named after the container's listen address.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The stamp `koekje version` prints (.git is not in the build context, so
# Go cannot stamp the image itself); without it the binary says it is
# unstamped. .ci/release gives the same three to its binaries.
ARG VERSION=
ARG REVISION=
ARG BUILT=
RUN CGO_ENABLED=1 go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION} -X main.built=${BUILT}" \
    -o /koekje ./cmd/koekje

FROM debian:bookworm-slim
# Chromium runs the sites' scheduled scans (a site's scan: in the config),
# one browser at a time. Its sandbox needs user namespaces, which Docker's
# default seccomp profile refuses: run the container with a profile that
# allows them (for instance Chromium's own, or --security-opt
# seccomp=unconfined), or the scheduled scans fail, are logged as errors
# and show as missing in the console.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata chromium fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /data koekje \
 && mkdir -p /data && chown koekje /data
COPY --from=build /koekje /usr/local/bin/koekje
USER koekje
VOLUME /data
ENV KOEKJE_ADDR=0.0.0.0:8080 KOEKJE_DB=/data/koekje.db
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD ["koekje", "health"]
ENTRYPOINT ["koekje"]
CMD ["serve"]
