package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/dpkeyring/dpkeyring/internal/server"
)

const serveUsage = `Usage:
  dpkeyring serve [--config FILE] [--addr HOST:PORT] [--data DIR] [--store SPEC] [--ring R]...
      [--rotate-interval DURATION] [--tls-cert F --tls-key F [--client-ca F]]
      [--enable-debug-decrypt [--debug-addr 127.0.0.1:8081]] [more flags below]

Runs the key-ring server: the single writer and source of truth of ASP.NET Core Data Protection
keys for every node (HTTP API v1, docs/openapi.yaml).

With no configuration it keeps its rings in the embedded file store in ./data, listens on
127.0.0.1:8080, creates the ring "default" with a first key, and on the first start prints an
admin and a node token ONCE (only their hashes are stored, in DATA/tokens.json). Logs are JSON
on stderr; the audit log is DATA/audit.log. SIGINT or SIGTERM shuts it down gracefully.

Settings come from, later winning: defaults, the JSON config file (--config or
$DPKEYRING_CONFIG), DPKEYRING_* environment variables, then flags. docs/operations.md has the
config file format and every variable.

Flags (environment variable in brackets):
  --config FILE            JSON config file, for several rings with their own store, application
                           name and policy [DPKEYRING_CONFIG]
  --addr HOST:PORT         API listen address (default 127.0.0.1:8080; port 0 picks a free one,
                           logged in the "listening" line) [DPKEYRING_ADDR]
  --data DIR               data folder: tokens, audit log, embedded store (default ./data)
                           [DPKEYRING_DATA]
  --store SPEC             store of the rings (default file:DATA): file:DIR, redis://...,
                           rediss://..., redis+sentinel://..., redis+cluster://..., vault://...
                           [DPKEYRING_STORE]
  --ring R                 serve ring R; repeat for several (default "default"); replaces the
                           config file's rings [DPKEYRING_RINGS, comma-separated]
  --app-name NAME          the application name (SetApplicationName) of the apps using the
                           rings; the debug endpoint tries it [DPKEYRING_APP_NAME]
  --key-lifetime D         key lifetime from activation (default 90d) [DPKEYRING_KEY_LIFETIME]
  --lead-time D            least time a new key is published before it activates (default 2d,
                           the minimum) [DPKEYRING_LEAD_TIME]
  --rotate-interval D      apply the rotation policy to every ring at this interval (jittered)
                           and once at start; at most 24h; 0 = off, rotate by cron
                           ('dpkeyring rotate') [DPKEYRING_ROTATE_INTERVAL]
  --tls-cert F, --tls-key F
                           serve HTTPS with this PEM certificate and key; re-read when the
                           files change [DPKEYRING_TLS_CERT, DPKEYRING_TLS_KEY]
  --client-ca F            require client certificates signed by these PEM CAs
                           [DPKEYRING_CLIENT_CA]
  --enable-debug-decrypt   serve POST /v1/rings/{ring}/debug/decrypt-cookie (debug role) on a
                           separate loopback listener; read docs/operations.md on its risks
                           first [DPKEYRING_ENABLE_DEBUG_DECRYPT]
  --debug-addr HOST:PORT   loopback address of the debug listener (default 127.0.0.1:8081)
                           [DPKEYRING_DEBUG_ADDR]
  --cert FILE              certificate with private key (PKCS#12 or PEM) protecting master keys
                           imported from ASP.NET Core (ProtectKeysWithCertificate); repeatable
                           [DPKEYRING_CERTS, comma-separated]
  --cert-password-file F   PKCS#12 password of --cert [DPKEYRING_CERT_PASSWORD_FILE]
  --audit-log FILE         audit log (default DATA/audit.log) [DPKEYRING_AUDIT_LOG]
  --shutdown-timeout D     graceful shutdown limit (default 15s) [DPKEYRING_SHUTDOWN_TIMEOUT]
`

func (c *cli) serve(ctx context.Context, args []string) error {
	const name = "serve"
	fs := newFlagSet(name)
	flags := server.BindFlags(fs)
	pos, err := c.parseFlags(fs, serveUsage, args)
	if err != nil || pos == nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf(name, "unexpected argument %q", pos[0])
	}
	cfg, err := server.Load(flags, c.getenv)
	if errors.Is(err, server.ErrInvalidConfig) {
		return usageErrorf(name, "%v", err)
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	// The log (one access log line per request) is buffered and written at most every 100 ms;
	// Close writes what is left once the server has shut down.
	logOut := server.NewLogWriter(c.stderr, server.LogFlushInterval)
	defer logOut.Close()
	logger := slog.New(server.NewLogHandler(logOut))
	if err := server.Run(ctx, cfg, logger, c.stdout); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
