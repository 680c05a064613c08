package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dpkeyring/dpkeyring/keyring"
)

func (c *cli) unprotect(ctx context.Context, args []string) error {
	const name = "unprotect"
	fs := newFlagSet(name)
	keys := fs.String("keys", "", "")
	var cf certFlags
	cf.register(fs)
	ringName := fs.String("ring", "default", "")
	appName := fs.String("app-name", "", "")
	var purposes stringList
	fs.Var(&purposes, "purpose", "")
	pos, err := c.parseFlags(fs, unprotectUsage, args)
	if err != nil || pos == nil {
		return err
	}
	if *keys == "" {
		return usageErrorf(name, "--keys is required")
	}
	if err := cf.validate(name); err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usageErrorf(name, "no payload given (give it as an argument, or - to read it from stdin)")
	case len(pos) > 1:
		return usageErrorf(name, "unexpected argument %q", pos[1])
	}
	text, err := c.argOrStdin(pos[0], "payload")
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	l, err := c.loadKeys(ctx, *keys, *ringName, cf)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	payload, err := keyring.Base64URLDecode(text)
	if err != nil {
		return fmt.Errorf("%s: cannot decrypt: the payload is not base64url text: %w", name, err)
	}
	chain := keyring.Purposes(*appName, purposes...)
	plaintext, _, err := l.ring.Unprotect(payload, chain)
	if err != nil {
		return fmt.Errorf("%s: %w", name, explainUnprotect(err, l.ring, payload, []purposeChain{{appName: *appName, purposes: purposes}}))
	}
	_, err = c.stdout.Write(plaintext)
	return err
}

// argOrStdin returns arg, or stdin's content when arg is "-", with surrounding white space
// removed.
func (c *cli) argOrStdin(arg, what string) (string, error) {
	if arg != "-" {
		return strings.TrimSpace(arg), nil
	}
	data, err := readLimited(c.stdin, "stdin")
	if err != nil {
		return "", fmt.Errorf("reading the %s from stdin: %w", what, err)
	}
	return strings.TrimSpace(string(data)), nil
}

// purposeChain is one application name and the purposes tried after it.
type purposeChain struct {
	appName  string
	purposes []string
}

// explainedError is an error with a message for the operator that still unwraps to its cause.
type explainedError struct {
	msg string
	err error
}

func (e *explainedError) Error() string { return e.msg }
func (e *explainedError) Unwrap() error { return e.err }

func explainf(err error, format string, args ...any) error {
	return &explainedError{msg: fmt.Sprintf(format, args...), err: err}
}

// explainUnprotect turns an unprotect error into one sentence saying why the payload cannot be
// decrypted: the key is not in the ring, is revoked or unusable, the purposes or application
// name are wrong (or the payload is corrupt), or it is not a payload at all.
func explainUnprotect(err error, ring *keyring.Ring, payload []byte, tried []purposeChain) error {
	id, idErr := keyring.PayloadKeyID(payload)
	var notFound *keyring.KeyNotFoundError
	switch {
	case idErr != nil:
		return fmt.Errorf("cannot decrypt: not a Data Protection payload: %w", idErr)
	case errors.As(err, &notFound):
		return explainf(err, "cannot decrypt: the payload was protected with key %s, which is not in the key ring (%d keys)", notFound.ID, ring.Len())
	case errors.Is(err, keyring.ErrKeyRevoked):
		return explainf(err, "cannot decrypt: the payload was protected with key %s, which is revoked", id)
	case errors.Is(err, keyring.ErrDecryptionFailed):
		return explainf(err, "cannot decrypt with key %s: wrong purposes or application name, or the payload is corrupt (tried %s)", id, describeTried(tried))
	}
	// The key cannot be used: its descriptor could not be read (protected by a mechanism or
	// certificate not given, unknown algorithm). The cause says which.
	return fmt.Errorf("cannot decrypt with key %s: %w", id, err)
}

// describeTried lists the purpose chains tried, for messages.
func describeTried(tried []purposeChain) string {
	parts := make([]string, len(tried))
	for i, t := range tried {
		app := "no application name"
		if t.appName != "" {
			app = fmt.Sprintf("application name %q", t.appName)
		}
		parts[i] = fmt.Sprintf("%s, purposes %q", app, t.purposes)
	}
	return strings.Join(parts, "; ")
}
