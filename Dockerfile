# The runner-bootstrap job image: a static binary on a small base that has /bin/sh,
# because GitLab runs a job's script with the image's shell (scratch/distroless cannot).
#
# The bases are build arguments so the build can be exercised with stand-in images
# (test/image builds them offline with buildah). Neither stage installs packages:
# the real alpine base already carries the CA bundle (ca-certificates-bundle).

ARG GO_IMAGE=golang:1.26-alpine
ARG BASE_IMAGE=alpine:3.22

FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first, so the download is cached across source-only changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/runner-bootstrap ./cmd/runner-bootstrap \
    && mkdir -p /out/certs \
    && if [ -s /etc/ssl/certs/ca-certificates.crt ]; then \
           cp /etc/ssl/certs/ca-certificates.crt /out/certs/ca-certificates.crt; \
       fi

FROM ${BASE_IMAGE}
ARG VERSION=dev
ARG LICENSES=MIT
LABEL org.opencontainers.image.title="runner-bootstrap" \
      org.opencontainers.image.description="Creates GitLab runners, stores and rotates their tokens in CI/CD variables" \
      org.opencontainers.image.source="https://gitlab.com/runner-bootstrap/runner-bootstrap" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="${LICENSES}"

COPY --from=build /out/certs/ /tmp/runner-bootstrap-certs/
# The base's own CA bundle wins (it may carry a company CA); the build stage's is only
# a fallback for bases without one, so TLS to gitlab.com works either way.
# uid 65532 gets a passwd entry and a writable HOME; /tmp stays world-writable for jobs.
RUN set -e; \
    if [ ! -s /etc/ssl/certs/ca-certificates.crt ] && [ -s /tmp/runner-bootstrap-certs/ca-certificates.crt ]; then \
        mkdir -p /etc/ssl/certs; \
        cp /tmp/runner-bootstrap-certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt; \
    fi; \
    rm -rf /tmp/runner-bootstrap-certs; \
    mkdir -p /home/nonroot /tmp; \
    chmod 1777 /tmp; \
    grep -q '^nonroot:' /etc/passwd 2>/dev/null || echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh' >> /etc/passwd; \
    grep -q '^nonroot:' /etc/group 2>/dev/null || echo 'nonroot:x:65532:' >> /etc/group; \
    chown 65532:65532 /home/nonroot

COPY --from=build /out/runner-bootstrap /usr/local/bin/runner-bootstrap

USER 65532:65532
ENV HOME=/home/nonroot
WORKDIR /home/nonroot
CMD ["runner-bootstrap", "--help"]
