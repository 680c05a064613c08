package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// errNotImplemented marks commands whose keyring support has not landed yet.
var errNotImplemented = errors.New("not implemented yet")

// minLifetime is ASP.NET Core's minimum NewKeyLifetime.
const minLifetime = 7 * 24 * time.Hour

// lifetimeFlag is a key lifetime: "90d" (days) or a Go duration ("2160h", "1440h30m").
type lifetimeFlag time.Duration

func (l *lifetimeFlag) String() string { return formatLifetime(time.Duration(*l)) }

func (l *lifetimeFlag) Set(s string) error {
	d, err := parseLifetime(s)
	if err != nil {
		return err
	}
	*l = lifetimeFlag(d)
	return nil
}

// parseLifetime parses "90d" (a whole number of days) or a Go duration such as "2160h".
func parseLifetime(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 32)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid lifetime %q: use a number of days such as 90d, or hours such as 2160h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid lifetime %q: use a number of days such as 90d, or hours such as 2160h", s)
	}
	return d, nil
}

// formatLifetime writes whole days as "90d", anything else as a Go duration.
func formatLifetime(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// certFlags are the flags that give certificates for master keys protected with
// ProtectKeysWithCertificate.
type certFlags struct {
	certs        stringList
	passwordFile string
}

func (f *certFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.certs, "cert", "")
	fs.StringVar(&f.passwordFile, "cert-password-file", "", "")
}

func (c *cli) keysList(ctx context.Context, args []string) error {
	const name = "keys list"
	fs := newFlagSet(name)
	keys := fs.String("keys", "", "")
	var cf certFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "")
	pos, err := c.parseFlags(fs, keysListUsage, args)
	if err != nil || pos == nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf(name, "unexpected argument %q", pos[0])
	}
	if *keys == "" {
		return usageErrorf(name, "--keys is required")
	}
	if err := cf.validate(name); err != nil {
		return err
	}
	_ = asJSON
	return fmt.Errorf("%s: %w", name, errNotImplemented)
}

func (c *cli) keysNew(ctx context.Context, args []string) error {
	const name = "keys new"
	fs := newFlagSet(name)
	dir := fs.String("dir", "", "")
	lifetime := lifetimeFlag(90 * 24 * time.Hour)
	fs.Var(&lifetime, "lifetime", "")
	activateNow := fs.Bool("activate-now", false, "")
	pos, err := c.parseFlags(fs, keysNewUsage, args)
	if err != nil || pos == nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf(name, "unexpected argument %q", pos[0])
	}
	if *dir == "" {
		return usageErrorf(name, "--dir is required")
	}
	if time.Duration(lifetime) < minLifetime {
		return usageErrorf(name, "--lifetime %s is shorter than the minimum 7d (ASP.NET Core refuses shorter key lifetimes)", lifetime.String())
	}
	_ = activateNow
	return fmt.Errorf("%s: %w", name, errNotImplemented)
}

// validate checks the certificate flags.
func (f *certFlags) validate(cmd string) error {
	if f.passwordFile != "" && len(f.certs) == 0 {
		return usageErrorf(cmd, "--cert-password-file needs --cert")
	}
	return nil
}
