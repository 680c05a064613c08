package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/atomicfile"
	"github.com/dpkeyring/dpkeyring/keyring"
)

// minLifetime is ASP.NET Core's minimum NewKeyLifetime.
const minLifetime = keyring.MinKeyLifetime

// maxLifetimeDays keeps a lifetime in days within time.Duration (about 292 years).
const maxLifetimeDays = 100000

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
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > maxLifetimeDays {
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

func (c *cli) keysNew(_ context.Context, args []string) error {
	const name = "keys new"
	fs := newFlagSet(name)
	dir := fs.String("dir", "", "")
	lifetime := lifetimeFlag(keyring.DefaultKeyLifetime)
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
	policy := keyring.DefaultPolicy()
	policy.Lifetime = time.Duration(lifetime)
	if err := policy.Validate(); err != nil {
		return usageErrorf(name, "--lifetime %s: %v", lifetime.String(), err)
	}

	now := c.now().UTC()
	var d keyring.Decision
	if *activateNow {
		d = policy.Immediate(now)
	} else {
		ring, err := existingRing(*dir)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		d = newKeyDates(policy, ring, now)
	}
	k, err := keyring.NewKey(d.Created, d.Activation, d.Expiration)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	element, err := keyring.MarshalKey(k)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	file, err := keyring.FileXML(element)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := writeFileAtomic(*dir, "key-"+k.ID.String()+".xml", file); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintln(c.stdout, k.ID)
	return nil
}

// existingRing loads the ring in dir, or returns an empty ring if dir does not exist. Keys
// whose master key cannot be opened still count: only their dates matter here.
func existingRing(dir string) (*keyring.Ring, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return keyring.NewRing(nil, nil, nil)
	}
	l, err := loadRing(dir, certFlags{})
	if err != nil {
		return nil, fmt.Errorf("refusing to add a key: %w", err)
	}
	for _, k := range l.ring.Keys() {
		switch k.Protection {
		case keyring.ProtectionNone, keyring.ProtectionNullEncryptor:
		default:
			// A new key would be written with its master key in the clear, and keys this
			// command cannot open would look unusable to the rotation policy.
			return nil, fmt.Errorf("refusing to add a key: key %s in %s has its master key protected (%s), and keys new writes unprotected keys only", k.ID, dir, k.Protection)
		}
	}
	return l.ring, nil
}

// newKeyDates returns the dates of a key added to ring at now by the policy: what
// [keyring.Policy.Decide] says when a key is due (a key activating now in a ring without a
// usable default key, else the successor taking over when the ring runs out of one); when no
// key is due yet, the successor Decide would create at its next due time, created now.
func newKeyDates(p keyring.Policy, ring *keyring.Ring, now time.Time) keyring.Decision {
	d := p.Decide(ring, now)
	if d.Due {
		return d
	}
	next := p.Decide(ring, d.NextDue)
	next.Created = now
	return next
}

// writeFileAtomic writes data to dir/name with mode 0600: into a temporary file in dir (whose
// name does not end in .xml, so readers ignore it), synced, then renamed into place, and the
// directory synced. It refuses to replace an existing file.
//
// A rename, not a hard link, gives the final name: key folders are often file shares (SMB, NFS)
// where links may not work. The existence check before it cannot race in practice, since the
// name holds a new random key id.
func writeFileAtomic(dir, name string, data []byte) error {
	final := filepath.Join(dir, name)
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("%s already exists", final)
	}
	tmp, err := atomicfile.WriteTemp(dir, ".tmp-"+name+"-", "", data)
	if err != nil {
		return err
	}
	if err := atomicfile.Replace(tmp, final); err != nil {
		return err
	}
	_ = atomicfile.SyncDir(dir) // the file is in place; only its durability is not confirmed
	return nil
}

// validate checks the certificate flags.
func (f *certFlags) validate(cmd string) error {
	if f.passwordFile != "" && len(f.certs) == 0 {
		return usageErrorf(cmd, "--cert-password-file needs --cert")
	}
	return nil
}
