#!/usr/bin/env bash
# Starts or stops the Vault dev server the vaultstore tests run against.
#
#   .ci/vault-server.sh start STATE_DIR   # prints `export KEYRING_TEST_VAULT_...=...` lines
#   .ci/vault-server.sh stop STATE_DIR    # kills only the pid recorded in STATE_DIR
#
# The binary comes from .ci/vault.sh (built once from the Go module proxy and cached; Vault never
# enters the project's go.mod). The server is an in-memory dev server on 127.0.0.1:18200
# (KEYRING_VAULT_PORT overrides the port) with root token "root", KV v2 at secret/, Transit with
# the key dpkeyring-test, and an AppRole whose policy allows only secret/{data,metadata}/approle-test/*
# (for the permission tests). Progress goes to stderr, the exports to stdout. Starting again with
# the same STATE_DIR while the server runs reuses it.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
state=$(cd "$2" && pwd)
pidfile="$state/vault.pid"
envfile="$state/vault.env"
logfile="$state/vault.log"
port=${KEYRING_VAULT_PORT:-18200}
addr="http://127.0.0.1:$port"
here=$(cd "$(dirname "$0")" && pwd)

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# stop_recorded kills the vault whose pid STATE_DIR records (never anything else).
stop_recorded() {
  if running; then
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
    fi
    echo "vault-server.sh: stopped vault (pid $pid)" >&2
  else
    echo "vault-server.sh: no vault running from $state" >&2
  fi
  rm -f "$pidfile" "$envfile"
}

case "$cmd" in
stop)
  stop_recorded
  exit 0
  ;;
start) ;;
*) usage ;;
esac

if running && [ -f "$envfile" ]; then
  echo "vault-server.sh: reusing vault (pid $(cat "$pidfile")) at $addr" >&2
  cat "$envfile"
  exit 0
fi
if running; then
  # Started from this STATE_DIR but never finished its setup: start over.
  stop_recorded
fi

bin=$("$here/vault.sh")
export VAULT_ADDR="$addr" VAULT_TOKEN=root

if "$bin" status >/dev/null 2>&1; then
  echo "vault-server.sh: something else already answers on $addr; stop it or set KEYRING_VAULT_PORT" >&2
  exit 1
fi

echo "vault-server.sh: starting vault dev server on $addr (log $logfile)" >&2
HOME="$state" nohup "$bin" server -dev -dev-root-token-id=root \
  -dev-listen-address="127.0.0.1:$port" -dev-no-store-token >"$logfile" 2>&1 </dev/null &
echo $! >"$pidfile"
# If anything below fails, stop the server we started rather than leave it half set up.
trap 'if [ ! -f "$envfile" ]; then stop_recorded; fi' EXIT

for i in $(seq 1 100); do
  if "$bin" status >/dev/null 2>&1; then
    break
  fi
  if ! running; then
    echo "vault-server.sh: vault exited; last log lines:" >&2
    tail -20 "$logfile" >&2
    exit 1
  fi
  if [ "$i" -eq 100 ]; then
    echo "vault-server.sh: vault not healthy after 20 s; last log lines:" >&2
    tail -20 "$logfile" >&2
    exit 1
  fi
  sleep 0.2
done

v() { "$bin" "$@" >/dev/null; }

v secrets enable transit
v write -f transit/keys/dpkeyring-test

v auth enable approle
"$bin" policy write dpkeyring-approle-test - >/dev/null <<'HCL'
path "secret/data/approle-test/*" {
  capabilities = ["create", "read", "update", "list"]
}
path "secret/metadata/approle-test/*" {
  capabilities = ["read", "list"]
}
HCL
v write auth/approle/role/dpkeyring-test token_policies=dpkeyring-approle-test token_ttl=20m token_max_ttl=1h
role_id=$("$bin" read -field=role_id auth/approle/role/dpkeyring-test/role-id)
secret_id=$("$bin" write -f -field=secret_id auth/approle/role/dpkeyring-test/secret-id)

cat >"$envfile" <<EOF
export KEYRING_TEST_VAULT_ADDR=$addr
export KEYRING_TEST_VAULT_TOKEN=root
export KEYRING_TEST_VAULT_TRANSIT_KEY=dpkeyring-test
export KEYRING_TEST_VAULT_APPROLE_ROLE_ID=$role_id
export KEYRING_TEST_VAULT_APPROLE_SECRET_ID=$secret_id
export KEYRING_TEST_VAULT_APPROLE_PATH=secret/approle-test
EOF
chmod 600 "$envfile"
echo "vault-server.sh: vault ready (pid $(cat "$pidfile"))" >&2
cat "$envfile"
