#!/usr/bin/env bash
# Installs everything edgehog needs on Debian 12, run as root by `make deps`.
#
#  1. Debian packages (skipped, without `apt-get update`, when all are installed);
#  2. Apache Kafka's broker jars from Maven Central into a cache directory
#     (KRaft mode; Debian ships no Kafka), skipped when already complete;
#  3. the real PostHog SDKs the tests use as clients (PyPI, npm, Go proxy).
#
# Idempotent and fast on a provisioned machine. It never starts or enables a
# service itself. NOTE: on a fresh machine without systemd, the postinst scripts
# of postgresql, redis-server, clickhouse-server and zookeeper may try to start
# their daemon through invoke-rc.d; our test/run stack does not use those system
# instances (every service runs as a child process on its own ports and dirs), so
# they are harmless, but you may stop them with `service <name> stop`.
#
# Environment:
#   EDGEHOG_KAFKA_JARS  jar cache dir (default $HOME/.cache/edgehog/kafka-3.9.1)
#   EDGEHOG_SKIP_APT=1  skip the Debian package step (jars only)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kafka_version=3.9.1
jars_dir="${EDGEHOG_KAFKA_JARS:-${HOME:-/root}/.cache/edgehog/kafka-${kafka_version}}"

packages=(
    nginx nginx-dev
    librdkafka-dev libhiredis-dev libpq-dev libmsgpack-dev zlib1g-dev
    libpcre2-dev libjansson-dev libcurl4-openssl-dev libssl-dev
    postgresql redis-server clickhouse-server clickhouse-client zookeeper
    default-jdk-headless maven
    python3-pytest python3-confluent-kafka python3-psycopg2 python3-redis
    python3-requests python3-venv
    clang libclang-rt-14-dev wrk
    libcjson-dev libjson-c-dev libjsmn-dev
    chromium
)

say() { printf 'deps: %s\n' "$*"; }

# --- 1. Debian packages --------------------------------------------------------
missing_packages() {
    local p status
    for p in "${packages[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
        [ "$status" = installed ] || printf '%s\n' "$p"
    done
}

if [ "${EDGEHOG_SKIP_APT:-0}" != 1 ]; then
    mapfile -t missing < <(missing_packages)
    if [ "${#missing[@]}" -eq 0 ]; then
        say "all ${#packages[@]} Debian packages present"
    else
        if [ "$(id -u)" -ne 0 ]; then
            say "missing packages (run as root): ${missing[*]}" >&2
            exit 1
        fi
        say "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            "${missing[@]}"
        mapfile -t still < <(missing_packages)
        if [ "${#still[@]}" -ne 0 ]; then
            say "still missing after install: ${still[*]}" >&2
            exit 1
        fi
        say "Debian packages installed"
    fi
fi

# --- 2. Kafka jars -------------------------------------------------------------
# The stamp holds a hash of the pom: it is written last, so an interrupted copy
# (or a changed pom) is redone from scratch.
pom="$here/kafka/pom.xml"
stamp="$jars_dir/.edgehog-complete"
want="$(sha256sum "$pom" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && ls "$jars_dir"/kafka_2.13-"$kafka_version".jar >/dev/null 2>&1; then
    say "Kafka $kafka_version jars present in $jars_dir"
else
    say "resolving Kafka $kafka_version jars into $jars_dir (Maven Central)"
    rm -rf "$jars_dir"
    mkdir -p "$jars_dir"
    mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
        -DoutputDirectory="$jars_dir" -DincludeScope=runtime
    ls "$jars_dir"/kafka_2.13-"$kafka_version".jar >/dev/null
    printf '%s\n' "$want" > "$stamp"
    say "Kafka jars ready ($(ls "$jars_dir"/*.jar | wc -l) jars)"
fi

# --- 3. Real PostHog SDKs used as test clients -----------------------------------
# posthog-python into a virtualenv that also sees Debian's python3-* packages
# (pytest, confluent-kafka, ...), posthog-node with npm; both pinned and skipped
# when the pins are already installed.
repo="$(cd "$here/.." && pwd)"
sdk="$repo/t/sdk"
venv="$repo/build/venv"
stamp="$venv/.edgehog-sdk"
want="$(cat "$sdk/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "Python SDK present in $venv"
else
    say "installing the Python SDK into $venv (PyPI)"
    rm -rf "$venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        -r "$sdk/requirements.txt"
    printf '%s\n' "$want" > "$stamp"
fi

# a machine may carry its own Node.js (whose npm conflicts with Debian's)
if ! command -v npm >/dev/null 2>&1; then
    say "installing Debian's nodejs and npm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi

stamp="$sdk/node_modules/.edgehog-sdk"
want="$(cat "$sdk/package.json" "$sdk/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "Node SDK present in $sdk/node_modules"
else
    say "installing the Node SDK (npm ci)"
    (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$want" > "$stamp"
fi

# posthog-go (Go module proxy), built into a small client binary; Debian's
# golang-go (1.19) is enough for the pinned version
if ! command -v go >/dev/null 2>&1; then
    say "installing Debian's golang-go"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go
fi

gobin="$repo/build/sdk-go/posthog-go-client"
stamp="$repo/build/sdk-go/.edgehog-sdk"
want="$(cat "$sdk/go/go.mod" "$sdk/go/go.sum" "$sdk/go/main.go" | sha256sum | cut -d' ' -f1)"
if [ -x "$gobin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "Go SDK client present in $gobin"
else
    say "building the Go SDK client (Go module proxy)"
    mkdir -p "$(dirname "$gobin")"
    (cd "$sdk/go" && GOFLAGS=-mod=readonly go build -o "$gobin" .)
    printf '%s\n' "$want" > "$stamp"
fi
