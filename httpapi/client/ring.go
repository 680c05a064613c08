package client

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/gorilla/securecookie"
)

// Element is one element of a ring as served: its friendly name (the file name without ".xml":
// "key-{id}", "revocation-…") and its XML in compact form.
type Element struct {
	Name string
	XML  []byte
}

// RingDoc is one version of a ring as the server served it. It is immutable: callers must not
// modify its slices.
type RingDoc struct {
	// Ring is the ring's name.
	Ring string
	// Version is the ring version (the number in the ETag).
	Version uint64
	// ETag is the server's strong ETag for this version, such as `"7"`.
	ETag string
	// Document is the repository document as served (the Azure Blob layout, see
	// [keyring.MarshalRepository]).
	Document []byte
	// Elements are the ring's elements in the document's order.
	Elements []Element
	// Keys is the parsed ring.
	Keys *keyring.Ring
	// Fetched is when this version was read from the server.
	Fetched time.Time
	// Stale is set on the copy [Client.Get] returns from its cache while the server is
	// unavailable.
	Stale bool

	now func() time.Time
}

// newDoc splits and parses a repository document.
func (c *Client) newDoc(ring string, version uint64, etag string, body []byte, fetched time.Time) (*RingDoc, error) {
	elems, err := keyring.SplitRepository(body)
	if err != nil {
		return nil, fmt.Errorf("%w: ring %s: %w", ErrBadResponse, ring, err)
	}
	keys, err := keyring.ParseElements(elems, c.parseOpts)
	if err != nil {
		return nil, fmt.Errorf("%w: ring %s: %w", ErrBadResponse, ring, err)
	}
	doc := &RingDoc{Ring: ring, Version: version, ETag: etag, Document: body, Keys: keys, Fetched: fetched, now: c.now}
	for _, e := range elems {
		doc.Elements = append(doc.Elements, Element{Name: elementName(e), XML: e})
	}
	return doc, nil
}

// elementName is the element's friendly name, or "unknown-" and 16 hex digits of its SHA-256
// for an element that is neither a key nor a revocation (as the stores name them).
func elementName(e []byte) string {
	if n, err := keyring.ElementName(e); err == nil {
		return n
	}
	sum := sha256.Sum256(e)
	return "unknown-" + hex.EncodeToString(sum[:8])
}

func (d *RingDoc) clock() time.Time {
	if d.now == nil {
		return time.Now()
	}
	return d.now()
}

// Unprotect decrypts a Data Protection payload (the raw bytes, not base64) for the purpose
// chain purposes (the application name first when the apps set one, see [keyring.Purposes]), as
// [keyring.Ring.Unprotect] does. Expired keys still decrypt; revoked keys do not.
func (d *RingDoc) Unprotect(payload []byte, purposes []string) ([]byte, error) {
	plaintext, _, err := d.Keys.Unprotect(payload, purposes)
	return plaintext, err
}

// Protect protects plaintext with the ring's default key now, for the purpose chain purposes
// ([keyring.Ring.Protect]).
func (d *RingDoc) Protect(plaintext []byte, purposes []string) ([]byte, error) {
	return d.Keys.Protect(d.clock(), plaintext, purposes)
}

// DecryptCookie decrypts an ASP.NET Core cookie-authentication cookie value (chunks already
// reassembled, see [keyring.ReassembleCookie]) with [keyring.Ring.DecryptCookie] at the
// client's current time. Use [keyring.UmbracoScheme] as opts.Scheme for the Umbraco backoffice
// cookie.
func (d *RingDoc) DecryptCookie(value string, opts keyring.CookieOptions) (*keyring.CookieResult, error) {
	return d.Keys.DecryptCookie(value, d.clock(), opts)
}

// SecureCookieLabel is the SP800-108 label of the securecookie key derivation.
const SecureCookieLabel = "dpkeyring/securecookie/v1"

// Sizes of the derived securecookie keys.
const (
	SecureCookieHashKeySize  = 64 // HMAC-SHA256 key
	SecureCookieBlockKeySize = 32 // AES-256 key
)

// DeriveSecureCookieKeys derives the securecookie hash key (64 bytes) and block key (32 bytes)
// of key k for purpose (see the package documentation). It returns an error wrapping
// [ErrInvalidOption] for an empty or non-UTF-8 purpose, and one explaining why when k has no
// usable master key.
func DeriveSecureCookieKeys(k keyring.Key, purpose string) (hashKey, blockKey []byte, err error) {
	if purpose == "" || !utf8.ValidString(purpose) {
		return nil, nil, fmt.Errorf("%w: the securecookie purpose must be non-empty UTF-8", ErrInvalidOption)
	}
	if k.Descriptor == nil || k.Descriptor.MasterKey.Len() == 0 {
		if k.DescriptorErr != nil {
			return nil, nil, fmt.Errorf("client: key %s cannot be used: %w", k.ID, k.DescriptorErr)
		}
		return nil, nil, fmt.Errorf("client: key %s has no master key", k.ID)
	}
	out := keyring.DeriveKey(k.Descriptor.MasterKey.Bytes(), []byte(SecureCookieLabel), nil, []byte(purpose),
		SecureCookieHashKeySize+SecureCookieBlockKeySize)
	return out[:SecureCookieHashKeySize], out[SecureCookieHashKeySize:], nil
}

// SecureCookieCodecs returns gorilla/securecookie codecs for purpose, one per usable key of the
// ring: first the default key's at the client's current time (the default key, else the
// fallback key, as [keyring.Ring.DefaultKey] chooses; securecookie.EncodeMulti encodes with
// it), then every other key that is not revoked and has a usable master key, newest activation
// first (securecookie.DecodeMulti tries them in order). Expired keys still decode, as in ASP.NET
// Core; revoked keys are left out, so their cookies stop decoding. Each call returns new codecs
// with securecookie's defaults (MaxAge 30 days; set it on each *securecookie.SecureCookie as
// needed). It returns an error wrapping [keyring.ErrNoDefaultKey] if the ring has no key to
// encode with, and one wrapping [ErrInvalidOption] for a bad purpose.
func (d *RingDoc) SecureCookieCodecs(purpose string) ([]securecookie.Codec, error) {
	return d.SecureCookieCodecsAt(d.clock(), purpose)
}

// SecureCookieCodecsAt is [RingDoc.SecureCookieCodecs] with the default key chosen at now.
func (d *RingDoc) SecureCookieCodecsAt(now time.Time, purpose string) ([]securecookie.Codec, error) {
	def, err := d.Keys.DefaultKey(now)
	if err != nil {
		return nil, err
	}
	keys := []keyring.Key{def}
	var others []keyring.Key
	for _, k := range d.Keys.Keys() {
		if k.ID == def.ID || d.Keys.IsRevoked(k) || k.Descriptor == nil || k.Descriptor.MasterKey.Len() == 0 {
			continue
		}
		others = append(others, k)
	}
	slices.SortStableFunc(others, func(a, b keyring.Key) int { return b.Activation.Compare(a.Activation) })
	keys = append(keys, others...)
	codecs := make([]securecookie.Codec, 0, len(keys))
	for _, k := range keys {
		hashKey, blockKey, err := DeriveSecureCookieKeys(k, purpose)
		if err != nil {
			return nil, err
		}
		codecs = append(codecs, securecookie.New(hashKey, blockKey))
	}
	return codecs, nil
}
