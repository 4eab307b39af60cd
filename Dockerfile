# Koekje in a container: built with cgo (SQLite), run as a non-root user,
# the database on a volume.
#   docker build -t koekje .
#   docker run -p 8080:8080 -v koekje-data:/data -e KOEKJE_ADMIN_TOKEN=… \
#     -e KOEKJE_PUBLIC_URL=https://consent.example.nl koekje
# KOEKJE_PUBLIC_URL is needed: the transparency log is named after it for
# life, and a new log is never named after the container's listen address.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -o /koekje ./cmd/koekje

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
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
