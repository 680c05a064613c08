# syntax=docker/dockerfile:1
#
# dpkeyring server image: a static binary on distroless, running as uid/gid 65532 (nonroot).
#
#   docker build -t dpkeyring .
#   docker run -d -p 8080:8080 -v dpkeyring-data:/data dpkeyring
#
# The default command serves on 0.0.0.0:8080 with the embedded file store, tokens and audit log
# in the /data volume; any other subcommand runs the same way (docker run --rm dpkeyring version).
# docs/deploy/README.md covers the image, Kubernetes, systemd and compose.
# docs/deploy/validate builds the binary exactly as the build stage below does and runs it: keep
# the two in step (its test parses this file).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Building from a git worktree or a copy without .git: pass --build-arg GOFLAGS=-buildvcs=false
# (the binary then reports no revision in 'dpkeyring version').
ARG GOFLAGS=
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/dpkeyring ./cmd/dpkeyring
# The data folder, owned by the runtime user so a fresh named volume is writable.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dpkeyring /dpkeyring
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/dpkeyring"]
CMD ["serve", "--addr", "0.0.0.0:8080", "--data", "/data"]
