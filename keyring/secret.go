package keyring

import (
	"fmt"
	"log/slog"
)

// Secret holds key material. It redacts itself everywhere it might be printed: fmt verbs,
// log/slog and JSON all show "REDACTED". Use [Secret.Bytes] to reach the bytes.
type Secret struct {
	b []byte
}

// NewSecret returns a Secret holding a copy of b.
func NewSecret(b []byte) Secret {
	return Secret{b: append([]byte(nil), b...)}
}

// Bytes returns the secret bytes. The caller must not modify them.
func (s Secret) Bytes() []byte { return s.b }

// Len returns the number of secret bytes.
func (s Secret) Len() int { return len(s.b) }

// String returns "REDACTED".
func (s Secret) String() string { return "REDACTED" }

// GoString returns "REDACTED".
func (s Secret) GoString() string { return "REDACTED" }

// Format prints "REDACTED" for every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("REDACTED")) }

// LogValue implements slog.LogValuer and returns "REDACTED".
func (s Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalText returns "REDACTED", so encoding/json never writes key material.
func (s Secret) MarshalText() ([]byte, error) { return []byte("REDACTED"), nil }
