#!/usr/bin/env bash
# Builds (once) and prints the path of a HashiCorp Vault server binary for the store tests.
#
# Debian has no Vault package, so the binary is built from the Go module proxy in a scratch
# module outside the project (Vault never enters dpkeyring's go.mod) and cached by version under
# ${XDG_CACHE_HOME:-$HOME/.cache}/dpkeyring. A cold build takes about 10 minutes on 2 cores; a
# cached one takes no time. The recipe is the measured one in shared/docs/real-servers.md.
set -euo pipefail

VAULT_VERSION=v1.21.0
VAULT_SDK_VERSION=v0.20.0
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/dpkeyring"
bin="$cache_dir/vault-$VAULT_VERSION"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache_dir"
work=$(mktemp -d /tmp/dpkeyring-vault-build.XXXXXX)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

echo "vault.sh: building Vault $VAULT_VERSION from the Go module proxy (about 10 minutes, once)" >&2
mkdir -p "$work/src"
cat >"$work/src/go.mod" <<MOD
module dpkeyringvault

go 1.25

require github.com/hashicorp/vault $VAULT_VERSION

replace github.com/hashicorp/vault/sdk => github.com/hashicorp/vault/sdk $VAULT_SDK_VERSION

replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3

replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
MOD
cat >"$work/src/main.go" <<'GO'
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() { os.Exit(command.Run(os.Args[1:])) }
GO
(
  cd "$work/src"
  export GOMODCACHE="$work/modcache" GOCACHE="$work/gocache" GOFLAGS="-buildvcs=false -mod=mod" CGO_ENABLED=0
  go build -trimpath -ldflags "-s -w" -o "$bin.tmp" . >&2
)
mv "$bin.tmp" "$bin"
echo "vault.sh: built $bin" >&2
echo "$bin"
