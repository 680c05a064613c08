package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/internal/storespec"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

const rotateUsage = `Usage:
  dpkeyring rotate --server URL --token-file F [--ring R] [--immediate] [--revoke-previous]
      [--reason TEXT] [--json]
  dpkeyring rotate --store SPEC [--ring R] [--key-lifetime 90d] [--lead-time 2d] [--immediate]
      [--revoke-previous] [--reason TEXT] [--json]

Applies the ring's rotation policy once, for cron jobs and Kubernetes CronJobs: creates a key
when one is due, else says when the next one will be. It is idempotent and safe to run from
any number of places at once: every write runs under the store's lock with fencing, so exactly
one key is created when one is due.

Prints one line:
  created key ID activating DATE, expiring DATE
  not due; next key due DATE
or with --json one JSON object (the server's answer: result, key_id, activation, expiration,
next_due, revoked, version, message). Exit code 0 when a key was created or none was due, 1 on
any failure (the server's error on stderr), 2 on a bad command line.

Modes:
  --server URL     ask a dpkeyring server (POST URL/v1/rings/R/rotate) with an admin token
                   (default $DPKEYRING_SERVER)
  --store SPEC     rotate directly against a store (file:DIR, redis://..., vault://...), for
                   setups with no server; the policy comes from --key-lifetime and --lead-time

Flags:
  --ring R
        the ring (default "default")
  --token-file F
        file holding an admin token (one final newline ignored); keep it mode 0600 (or 0440
        with a group); a warning is printed if all users can read it.
        Default $DPKEYRING_TOKEN_FILE
  --tls-ca FILE
        PEM CA bundle to verify the server's certificate (default: system roots)
  --tls-client-cert FILE, --tls-client-key FILE
        client certificate and key, for servers started with --client-ca
  --immediate
        create a key that activates now, whether or not one is due (emergency). Nodes pick it
        up from the server within seconds; ASP.NET Core nodes reading the store directly may
        take up to 24 hours
  --revoke-previous
        with --immediate: also revoke every key that was usable before (a compromised key);
        needs --reason
  --reason TEXT
        recorded in the revocations, the ring metadata and the audit log
  --key-lifetime DURATION, --lead-time DURATION
        the policy in --store mode (default 90d and 2d)
` + certFlagsUsage + `        (--store mode: to read keys imported from ASP.NET Core)
  --timeout DURATION
        give up after this long (default 90s)
  --json
        print one JSON object
`

// rotateOutput is the JSON of "rotate --json": the server's answer to
// POST /v1/rings/{ring}/rotate, and the same fields in --store mode.
type rotateOutput = rotation.Summary

type rotateFlags struct {
	server, tokenFile, storeSpec, ring, reason string
	tlsCA, tlsClientCert, tlsClientKey         string
	immediate, revokePrevious, asJSON          bool
	lifetime, leadTime                         lifetimeFlag
	timeout                                    time.Duration
	certs                                      certFlags
}

func (c *cli) rotate(ctx context.Context, args []string) error {
	const name = "rotate"
	fs := newFlagSet(name)
	f := rotateFlags{lifetime: lifetimeFlag(keyring.DefaultKeyLifetime), leadTime: lifetimeFlag(keyring.DefaultLeadTime)}
	fs.StringVar(&f.server, "server", c.getenv("DPKEYRING_SERVER"), "")
	fs.StringVar(&f.tokenFile, "token-file", c.getenv("DPKEYRING_TOKEN_FILE"), "")
	fs.StringVar(&f.storeSpec, "store", "", "")
	fs.StringVar(&f.ring, "ring", "default", "")
	fs.StringVar(&f.reason, "reason", "", "")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "")
	fs.StringVar(&f.tlsClientCert, "tls-client-cert", "", "")
	fs.StringVar(&f.tlsClientKey, "tls-client-key", "", "")
	fs.BoolVar(&f.immediate, "immediate", false, "")
	fs.BoolVar(&f.revokePrevious, "revoke-previous", false, "")
	fs.BoolVar(&f.asJSON, "json", false, "")
	fs.Var(&f.lifetime, "key-lifetime", "")
	fs.Var(&f.leadTime, "lead-time", "")
	fs.DurationVar(&f.timeout, "timeout", 90*time.Second, "")
	f.certs.register(fs)
	pos, err := c.parseFlags(fs, rotateUsage, args)
	if err != nil || pos == nil {
		return err
	}
	set := explicitFlags(fs)
	switch {
	case len(pos) != 0:
		return usageErrorf(name, "unexpected argument %q", pos[0])
	case f.server != "" && f.storeSpec != "":
		return usageErrorf(name, "give --server or --store, not both")
	case f.server == "" && f.storeSpec == "":
		return usageErrorf(name, "--server URL (with --token-file) or --store SPEC is required")
	case f.revokePrevious && !f.immediate:
		return usageErrorf(name, "--revoke-previous needs --immediate: revoking the current keys before their successor activates would leave the ring without a default key")
	case f.revokePrevious && f.reason == "":
		return usageErrorf(name, "--revoke-previous needs --reason")
	case f.timeout <= 0:
		return usageErrorf(name, "--timeout must be positive")
	}
	if err := store.ValidRingName(f.ring); err != nil {
		return usageErrorf(name, "--ring: %v", err)
	}
	if f.server != "" && (set["key-lifetime"] || set["lead-time"] || set["cert"]) {
		return usageErrorf(name, "--key-lifetime, --lead-time and --cert apply to --store mode; the server uses its own configuration")
	}
	if err := f.certs.validate(name); err != nil {
		return err
	}
	if f.storeSpec != "" && (f.tokenFile != "" && set["token-file"]) {
		return usageErrorf(name, "--token-file applies to --server mode")
	}
	if (f.tlsClientCert == "") != (f.tlsClientKey == "") {
		return usageErrorf(name, "--tls-client-cert and --tls-client-key go together")
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	var out rotateOutput
	if f.server != "" {
		out, err = c.rotateServer(ctx, f)
	} else {
		out, err = c.rotateStore(ctx, f)
	}
	if err != nil {
		return fmt.Errorf("rotate: ring %s: %w", f.ring, err)
	}
	if f.asJSON {
		if out.Revoked == nil {
			out.Revoked = []string{}
		}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s\n", b)
		return nil
	}
	fmt.Fprintln(c.stdout, rotateLine(out))
	return nil
}

// rotateLine is the one-line summary of a rotation.
func rotateLine(o rotateOutput) string {
	date := func(t time.Time) string {
		if t.IsZero() {
			return "(unknown)"
		}
		return t.UTC().Format(time.RFC3339)
	}
	if o.Result != "created" {
		return "not due; next key due " + date(o.NextDue)
	}
	line := fmt.Sprintf("created key %s activating %s, expiring %s", o.KeyID, date(o.Activation), date(o.Expiration))
	if len(o.Revoked) > 0 {
		line += fmt.Sprintf("; revoked %d key(s): %s", len(o.Revoked), strings.Join(o.Revoked, ", "))
	}
	return line
}

// readTokenFile reads the token, warning (not failing) when the file is readable by all users.
func (c *cli) readTokenFile(path string) (string, error) {
	if path == "" {
		return "", usageErrorf("rotate", "--token-file is required with --server")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	// Group read is fine (Kubernetes mounts Secrets with fsGroup as 0440); read by others is not.
	if fi.Mode().Perm()&0o004 != 0 {
		fmt.Fprintf(c.stderr, "dpkeyring: warning: token file %s has mode %v: readable by all users (the others read bit, o+r, is set); chmod o-r it\n", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	if strings.ContainsAny(token, "\r\n\t ") {
		return "", fmt.Errorf("token file %s holds more than one word; it must hold only the token", path)
	}
	return token, nil
}

func (f rotateFlags) httpClient() (*http.Client, error) {
	if f.tlsCA == "" && f.tlsClientCert == "" {
		return &http.Client{}, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.tlsCA != "" {
		pem, err := os.ReadFile(f.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca: no PEM certificate in %s", f.tlsCA)
		}
		tc.RootCAs = pool
	}
	if f.tlsClientCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsClientCert, f.tlsClientKey)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}, nil
}

func (c *cli) rotateServer(ctx context.Context, f rotateFlags) (rotateOutput, error) {
	u, err := url.Parse(f.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return rotateOutput{}, usageErrorf("rotate", "--server %q: want http(s)://HOST[:PORT]", f.server)
	}
	token, err := c.readTokenFile(f.tokenFile)
	if err != nil {
		return rotateOutput{}, err
	}
	client, err := f.httpClient()
	if err != nil {
		return rotateOutput{}, err
	}
	body, _ := json.Marshal(map[string]any{"immediate": f.immediate, "revoke_previous": f.revokePrevious, "reason": f.reason})
	endpoint := u.JoinPath("v1", "rings", f.ring, "rotate")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return rotateOutput{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		// The url.Error names the URL (no secrets: the token is in a header).
		return rotateOutput{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return rotateOutput{}, fmt.Errorf("reading the answer of %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return rotateOutput{}, fmt.Errorf("server answered %s: %s", resp.Status, errorBodyLine(b))
	}
	var out rotateOutput
	if err := json.Unmarshal(b, &out); err != nil || (out.Result != "created" && out.Result != "not due") {
		return rotateOutput{}, fmt.Errorf("unexpected answer from %s: %s", endpoint, errorBodyLine(b))
	}
	return out, nil
}

// errorBodyLine renders an error answer as one line: the JSON error and code, else the start
// of the body.
func errorBodyLine(b []byte) string {
	var e struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		if e.Code != "" {
			return e.Error + " (" + e.Code + ")"
		}
		return e.Error
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	if s == "" {
		s = "(empty body)"
	}
	return s
}

func (c *cli) rotateStore(ctx context.Context, f rotateFlags) (rotateOutput, error) {
	policy := keyring.Policy{Lifetime: time.Duration(f.lifetime), LeadTime: time.Duration(f.leadTime)}
	if err := policy.Validate(); err != nil {
		return rotateOutput{}, usageErrorf("rotate", "%v", err)
	}
	opts, err := f.certs.parseOptions()
	if err != nil {
		return rotateOutput{}, err
	}
	st, err := storespec.Open(ctx, f.storeSpec, c.getenv)
	if err != nil {
		return rotateOutput{}, fmt.Errorf("store %s: %w", storespec.Redact(f.storeSpec), err)
	}
	defer st.Close()
	r := &rotation.Rotator{Store: st, Ring: f.ring, Policy: policy, Owner: cliOwner(), LockWait: f.timeout, Now: c.now, ParseOptions: opts}
	res, err := r.Rotate(ctx, rotation.Request{Immediate: f.immediate, RevokePrevious: f.revokePrevious, Reason: f.reason})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return rotateOutput{}, fmt.Errorf("gave up after --timeout %s: %w", f.timeout, err)
		}
		return rotateOutput{}, err
	}
	return res.Summary(), nil
}

// cliOwner names this process in store leases.
func cliOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("rotate/%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
