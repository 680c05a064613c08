package keyring_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// Helpers shared by status_test.go, defaultkey_test.go and policy_test.go. Their names start
// with "pol" so they do not clash with helpers of other test files in this package.

// polSpec describes a test key. Dates use ASP.NET Core's "u" format ("2015-03-01 00:00:00Z"),
// as in its tests; an empty creation date is the zero time (.NET's DateTimeOffset.MinValue,
// what the upstream mocks return).
type polSpec struct {
	name                         string
	id                           string // optional; derived from name when empty
	created, activation, expires string
	revoked                      bool // revoked by a revocation of its id
	broken                       bool // no descriptor (encryptor cannot be created)
}

func polTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse("2006-01-02 15:04:05Z", s)
	if err != nil {
		tb.Fatalf("bad test date %q: %v", s, err)
	}
	return t
}

// polID returns a deterministic key id for a test key name.
func polID(tb testing.TB, name string) keyring.KeyID {
	tb.Helper()
	var n uint32
	for _, c := range name {
		n = n*31 + uint32(c)
	}
	id, err := keyring.ParseKeyID(fmt.Sprintf("%08x-0000-4000-8000-000000000000", n))
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// polDescriptor returns the default ASP.NET Core descriptor with a fresh 64-byte master key.
func polDescriptor(tb testing.TB) *keyring.Descriptor {
	tb.Helper()
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return &keyring.Descriptor{Encryption: keyring.AES256CBC, Validation: keyring.HMACSHA256, MasterKey: keyring.NewSecret(b)}
}

// polNewKey returns a usable key with the given dates.
func polNewKey(tb testing.TB, id keyring.KeyID, created, activation, expiration time.Time) keyring.Key {
	tb.Helper()
	return keyring.Key{ID: id, Created: created, Activation: activation, Expiration: expiration, Descriptor: polDescriptor(tb)}
}

// mustPolRing builds a ring from specs and returns it with a name→id map.
func mustPolRing(tb testing.TB, specs []polSpec, extra ...keyring.Revocation) (*keyring.Ring, map[keyring.KeyID]string) {
	tb.Helper()
	var keys []keyring.Key
	revs := extra
	names := map[keyring.KeyID]string{}
	for _, s := range specs {
		id := polID(tb, s.name)
		if s.id != "" {
			var err error
			if id, err = keyring.ParseKeyID(s.id); err != nil {
				tb.Fatal(err)
			}
		}
		names[id] = s.name
		k := polNewKey(tb, id, polTime(tb, s.created), polTime(tb, s.activation), polTime(tb, s.expires))
		if s.broken {
			k.Descriptor = nil
			k.DescriptorErr = errors.New("test: secret cannot be decrypted")
		}
		keys = append(keys, k)
		if s.revoked {
			revs = append(revs, keyring.Revocation{Date: polTime(tb, "2000-01-01 00:00:00Z"), KeyID: id})
		}
	}
	r, err := keyring.NewRing(keys, revs, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return r, names
}

// polName returns the test name of k, or "" for nil.
func polName(names map[keyring.KeyID]string, k *keyring.Key) string {
	if k == nil {
		return ""
	}
	if n, ok := names[k.ID]; ok {
		return n
	}
	return k.ID.String()
}

type polResolution struct {
	Default, Fallback string
	ShouldGenerate    bool
}

// TestResolveDefaultKeyUpstream ports DefaultKeyResolverTests.cs of dotnet/aspnetcore (main,
// after #57137). Fallback expectations the upstream test does not assert are derived from
// DefaultKeyResolver.cs and marked.
func TestResolveDefaultKeyUpstream(t *testing.T) {
	tests := []struct {
		name string
		now  string
		keys []polSpec
		want polResolution
	}{
		{
			name: "EmptyKeyRing_ReturnsNullDefaultKey",
			now:  "2015-03-01 00:00:00Z",
			want: polResolution{ShouldGenerate: true},
		},
		{
			name: "ValidExistingKey_ReturnsExistingKey",
			now:  "2016-02-20 23:59:00Z",
			keys: []polSpec{
				{name: "key1", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z"},
				{name: "key2", activation: "2016-03-01 00:00:00Z", expires: "2017-03-01 00:00:00Z"},
			},
			want: polResolution{Default: "key1"},
		},
		{
			name: "ValidExistingKey_AllowsForClockSkew_KeysStraddleSkewLine_ReturnsExistingKey",
			now:  "2016-02-29 23:59:00Z",
			keys: []polSpec{
				{name: "key1", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z"},
				{name: "key2", activation: "2016-03-01 00:00:00Z", expires: "2017-03-01 00:00:00Z"},
			},
			want: polResolution{Default: "key2"},
		},
		{
			name: "ValidExistingKey_AllowsForClockSkew_AllKeysInFuture_ReturnsExistingKey",
			now:  "2016-02-29 23:59:00Z",
			keys: []polSpec{
				{name: "key1", activation: "2016-03-01 00:00:00Z", expires: "2017-03-01 00:00:00Z"},
			},
			want: polResolution{Default: "key1"},
		},
		{
			name: "ValidExistingKey_NoSuccessor_ReturnsExistingKey_DoesNotSignalGenerateNewKey",
			now:  "2016-02-29 23:59:00Z",
			keys: []polSpec{
				{name: "key1", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z"},
			},
			want: polResolution{Default: "key1"},
		},
		{
			name: "ValidExistingKey_NoLegitimateSuccessor_ReturnsExistingKey_DoesNotSignalGenerateNewKey",
			now:  "2016-02-29 23:50:00Z",
			keys: []polSpec{
				{name: "key1", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z"},
				{name: "key2", activation: "2016-03-01 00:00:00Z", expires: "2017-03-01 00:00:00Z", revoked: true},
				{name: "key3", activation: "2016-03-01 00:00:00Z", expires: "2016-03-02 00:00:00Z"},
			},
			want: polResolution{Default: "key1"},
		},
		{
			name: "MostRecentKeyIsInvalid_BecauseOfRevocation_ReturnsNull",
			now:  "2015-04-01 00:00:00Z",
			keys: []polSpec{
				{name: "key1", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z"},
				{name: "key2", activation: "2015-03-02 00:00:00Z", expires: "2016-03-01 00:00:00Z", revoked: true},
			},
			want: polResolution{Fallback: "key1" /* derived */, ShouldGenerate: true},
		},
		{
			name: "MostRecentKeyIsInvalid_BecauseOfFailureToDecipher_ReturnsNull",
			now:  "2015-04-01 00:00:00Z",
			keys: []polSpec{
				{name: "key1", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z"},
				{name: "key2", activation: "2015-03-02 00:00:00Z", expires: "2016-03-01 00:00:00Z", broken: true},
			},
			want: polResolution{Fallback: "key1" /* derived */, ShouldGenerate: true},
		},
		{
			name: "FutureKeyIsValidAndWithinClockSkew_ReturnsFutureKey",
			now:  "2015-02-28 23:55:00Z",
			keys: []polSpec{
				{name: "key1", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z"},
			},
			want: polResolution{Default: "key1"},
		},
		{
			name: "FutureKeyIsValidButNotWithinClockSkew_ReturnsNull",
			now:  "2015-02-28 23:00:00Z",
			keys: []polSpec{
				{name: "key1", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z"},
			},
			want: polResolution{Fallback: "key1" /* derived */, ShouldGenerate: true},
		},
		{
			name: "IgnoresExpiredOrRevokedFutureKeys",
			now:  "2015-02-28 23:59:00Z",
			keys: []polSpec{
				{name: "key1", activation: "2015-03-01 00:00:00Z", expires: "2014-03-01 00:00:00Z"},
				{name: "key2", activation: "2015-03-01 00:01:00Z", expires: "2015-04-01 00:00:00Z", revoked: true},
				{name: "key3", activation: "2015-03-01 00:02:00Z", expires: "2015-04-01 00:00:00Z"},
			},
			want: polResolution{Default: "key3"},
		},
		{
			name: "FallbackKey_SelectsLatestBeforePriorPropagationWindow_IgnoresRevokedKeys",
			now:  "2000-01-05 00:00:00Z",
			keys: []polSpec{
				{name: "key1", created: "2000-01-01 00:00:00Z", activation: "2010-01-01 00:00:00Z", expires: "2010-01-01 00:00:00Z"},
				{name: "key2", created: "2000-01-02 00:00:00Z", activation: "2010-01-01 00:00:00Z", expires: "2010-01-01 00:00:00Z"},
				{name: "key3", created: "2000-01-03 00:00:00Z", activation: "2010-01-01 00:00:00Z", expires: "2010-01-01 00:00:00Z", revoked: true},
				{name: "key4", created: "2000-01-04 00:00:00Z", activation: "2010-01-01 00:00:00Z", expires: "2010-01-01 00:00:00Z"},
			},
			want: polResolution{Fallback: "key2", ShouldGenerate: true},
		},
		{
			name: "FallbackKey_SelectsLatestBeforePriorPropagationWindow_IgnoresFailures",
			now:  "2000-01-05 00:00:00Z",
			keys: []polSpec{
				{name: "key1", created: "2000-01-01 00:00:00Z", activation: "2010-01-01 00:00:00Z", expires: "2010-01-01 00:00:00Z"},
				{name: "key2", created: "2000-01-02 00:00:00Z", activation: "2010-01-01 00:00:00Z", expires: "2010-01-01 00:00:00Z"},
				{name: "key3", created: "2000-01-03 00:00:00Z", activation: "2010-01-01 00:00:00Z", expires: "2010-01-01 00:00:00Z", broken: true},
				{name: "key4", created: "2000-01-04 00:00:00Z", activation: "2010-01-01 00:00:00Z", expires: "2010-01-01 00:00:00Z"},
			},
			want: polResolution{Fallback: "key2", ShouldGenerate: true},
		},
		{
			name: "FallbackKey_NoNonRevokedKeysBeforePriorPropagationWindow_SelectsEarliestNonRevokedKey",
			now:  "2000-01-05 00:00:00Z",
			keys: []polSpec{
				{name: "key1", created: "2000-01-03 00:00:00Z", activation: "2010-01-01 00:00:00Z", expires: "2010-01-01 00:00:00Z", revoked: true},
				{name: "key2", created: "2000-01-04 00:00:00Z", activation: "2010-01-01 00:00:00Z", expires: "2010-01-01 00:00:00Z"},
				{name: "key3", created: "2000-01-05 00:00:00Z", activation: "2010-01-01 00:00:00Z", expires: "2010-01-01 00:00:00Z"},
			},
			want: polResolution{Fallback: "key2", ShouldGenerate: true},
		},
		{
			// #57137: the newest activated key wins even when neither key has propagated.
			name: "OlderBadKeyVersusNewerGoodKey",
			now:  "2010-01-01 00:00:00Z",
			keys: []polSpec{
				{name: "key1", created: "2009-12-31 23:00:00Z", activation: "2009-12-31 23:00:00Z", expires: "2010-03-31 23:00:00Z"},
				{name: "key2", created: "2009-12-31 22:00:00Z", activation: "2009-12-31 22:00:00Z", expires: "2010-03-31 22:00:00Z", broken: true},
			},
			want: polResolution{Default: "key1"},
		},
		{
			name: "CreateEncryptor_NoRetryOnNullReturn",
			now:  "2010-01-01 00:00:00Z",
			keys: []polSpec{
				{name: "key", created: "2009-12-29 00:00:00Z", activation: "2009-12-31 00:00:00Z", expires: "2010-01-15 00:00:00Z", broken: true},
			},
			want: polResolution{ShouldGenerate: true},
		},
		{
			name: "CreateEncryptor_FirstAttemptIsNotARetry",
			now:  "2010-01-01 00:00:00Z",
			keys: []polSpec{
				{name: "key1", created: "2009-12-29 00:00:00Z", activation: "2009-12-31 00:00:00Z", expires: "2010-03-29 00:00:00Z"},
				{name: "key2", created: "2009-12-29 01:00:00Z", activation: "2009-12-31 01:00:00Z", expires: "2010-03-29 01:00:00Z", broken: true},
			},
			want: polResolution{Fallback: "key1", ShouldGenerate: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, names := mustPolRing(t, tc.keys)
			res := r.ResolveDefaultKey(polTime(t, tc.now))
			got := polResolution{Default: polName(names, res.Default), Fallback: polName(names, res.Fallback), ShouldGenerate: res.ShouldGenerate}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ResolveDefaultKey(%s) mismatch (-want +got):\n%s", tc.now, diff)
			}
		})
	}
}

// TestResolveDefaultKeyRules covers the rules the upstream tests leave implicit: boundaries,
// the System.Guid tie-break, fallback ordering details and unusable descriptors.
func TestResolveDefaultKeyRules(t *testing.T) {
	tests := []struct {
		name string
		now  string
		keys []polSpec
		want polResolution
	}{
		{
			// The rejected preferred key is propagated (created long ago), so it is not its own
			// fallback.
			name: "expiration equal to now is expired",
			now:  "2016-03-01 00:00:00Z",
			keys: []polSpec{{name: "key1", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z"}},
			want: polResolution{ShouldGenerate: true},
		},
		{
			name: "activation one second beyond the skew is not considered",
			now:  "2015-02-28 23:54:59Z",
			keys: []polSpec{{name: "key1", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z"}},
			want: polResolution{Fallback: "key1", ShouldGenerate: true},
		},
		{
			name: "only the most recently activated key is considered",
			now:  "2015-06-01 00:00:00Z",
			keys: []polSpec{
				{name: "old", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
				{name: "new", activation: "2015-05-01 00:00:00Z", expires: "2015-05-31 00:00:00Z"},
			},
			want: polResolution{Fallback: "old", ShouldGenerate: true},
		},
		{
			name: "activation tie goes to the smaller id",
			now:  "2015-06-01 00:00:00Z",
			keys: []polSpec{
				{name: "b", id: "00000002-0000-0000-0000-000000000000", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
				{name: "a", id: "00000001-0000-0000-0000-000000000000", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
			},
			want: polResolution{Default: "a"},
		},
		{
			// Guid.CompareTo compares the first field as uint: 0x7fffffff < 0xffffffff (a signed
			// comparison would say otherwise).
			name: "tie-break compares the first field unsigned",
			now:  "2015-06-01 00:00:00Z",
			keys: []polSpec{
				{name: "ffff", id: "ffffffff-0000-0000-0000-000000000000", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
				{name: "7fff", id: "7fffffff-0000-0000-0000-000000000000", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
			},
			want: polResolution{Default: "7fff"},
		},
		{
			name: "tie-break compares the 16-bit fields unsigned",
			now:  "2015-06-01 00:00:00Z",
			keys: []polSpec{
				{name: "8000", id: "00000000-8000-0000-0000-000000000000", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
				{name: "7fff", id: "00000000-7fff-0000-0000-000000000000", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
			},
			want: polResolution{Default: "7fff"},
		},
		{
			name: "tie-break compares the last bytes in order",
			now:  "2015-06-01 00:00:00Z",
			keys: []polSpec{
				{name: "x02", id: "00000000-0000-0000-0000-000000000002", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
				{name: "x01", id: "00000000-0000-0000-0100-000000000000", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
			},
			want: polResolution{Default: "x02"},
		},
		{
			name: "tie with a revoked smaller id leaves no default",
			now:  "2015-06-01 00:00:00Z",
			keys: []polSpec{
				{name: "good", id: "00000002-0000-0000-0000-000000000000", created: "2015-01-01 00:00:00Z", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
				{name: "bad", id: "00000001-0000-0000-0000-000000000000", created: "2015-01-01 00:00:00Z", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z", revoked: true},
			},
			want: polResolution{Fallback: "good", ShouldGenerate: true},
		},
		{
			// ASP.NET Core excludes the rejected preferred key only from the propagated group.
			name: "recent expired preferred key can be its own fallback",
			now:  "2015-06-01 00:00:00Z",
			keys: []polSpec{
				{name: "short", created: "2015-05-31 00:00:00Z", activation: "2015-05-31 00:00:00Z", expires: "2015-05-31 12:00:00Z"},
			},
			want: polResolution{Fallback: "short", ShouldGenerate: true},
		},
		{
			name: "propagated expired preferred key is not its own fallback",
			now:  "2015-06-01 00:00:00Z",
			keys: []polSpec{
				{name: "short", created: "2015-05-01 00:00:00Z", activation: "2015-05-01 00:00:00Z", expires: "2015-05-31 12:00:00Z"},
			},
			want: polResolution{ShouldGenerate: true},
		},
		{
			name: "fallback creation boundary is inclusive",
			now:  "2015-06-03 00:00:00Z",
			keys: []polSpec{
				{name: "atCutoff", created: "2015-06-01 00:00:00Z", activation: "2016-01-01 00:00:00Z", expires: "2017-01-01 00:00:00Z"},
				{name: "older", created: "2015-05-01 00:00:00Z", activation: "2016-01-01 00:00:00Z", expires: "2017-01-01 00:00:00Z"},
			},
			want: polResolution{Fallback: "atCutoff", ShouldGenerate: true},
		},
		{
			name: "fallback with equal creation dates keeps ring order",
			now:  "2015-06-03 00:00:00Z",
			keys: []polSpec{
				{name: "first", id: "00000009-0000-0000-0000-000000000000", created: "2015-05-01 00:00:00Z", activation: "2016-01-01 00:00:00Z", expires: "2017-01-01 00:00:00Z"},
				{name: "second", id: "00000001-0000-0000-0000-000000000000", created: "2015-05-01 00:00:00Z", activation: "2016-01-01 00:00:00Z", expires: "2017-01-01 00:00:00Z"},
			},
			want: polResolution{Fallback: "first", ShouldGenerate: true},
		},
		{
			name: "fallback ignores keys without descriptor in both groups",
			now:  "2015-06-03 00:00:00Z",
			keys: []polSpec{
				{name: "oldBroken", created: "2015-05-01 00:00:00Z", activation: "2016-01-01 00:00:00Z", expires: "2017-01-01 00:00:00Z", broken: true},
				{name: "newBroken", created: "2015-06-02 00:00:00Z", activation: "2016-01-01 00:00:00Z", expires: "2017-01-01 00:00:00Z", broken: true},
				{name: "newest", created: "2015-06-02 12:00:00Z", activation: "2016-01-01 00:00:00Z", expires: "2017-01-01 00:00:00Z"},
			},
			want: polResolution{Fallback: "newest", ShouldGenerate: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, names := mustPolRing(t, tc.keys)
			res := r.ResolveDefaultKey(polTime(t, tc.now))
			got := polResolution{Default: polName(names, res.Default), Fallback: polName(names, res.Fallback), ShouldGenerate: res.ShouldGenerate}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ResolveDefaultKey(%s) mismatch (-want +got):\n%s", tc.now, diff)
			}
		})
	}
}

// TestResolveDefaultKeyDescriptors checks which descriptors count as usable.
func TestResolveDefaultKeyDescriptors(t *testing.T) {
	now := polTime(t, "2015-06-01 00:00:00Z")
	tests := []struct {
		name string
		d    *keyring.Descriptor
		want bool
	}{
		{"nil descriptor", nil, false},
		{"AES-256-CBC + HMACSHA256", &keyring.Descriptor{Encryption: keyring.AES256CBC, Validation: keyring.HMACSHA256}, true},
		{"AES-128-CBC + HMACSHA512", &keyring.Descriptor{Encryption: keyring.AES128CBC, Validation: keyring.HMACSHA512}, true},
		{"AES-256-GCM without validation", &keyring.Descriptor{Encryption: keyring.AES256GCM}, true},
		{"CBC without validation", &keyring.Descriptor{Encryption: keyring.AES256CBC}, false},
		{"unknown encryption", &keyring.Descriptor{Encryption: keyring.EncryptionUnknown, Validation: keyring.HMACSHA256}, false},
		{"out of range encryption", &keyring.Descriptor{Encryption: keyring.EncryptionAlgorithm(99), Validation: keyring.HMACSHA256}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := keyring.Key{ID: polID(t, "k"), Activation: now.Add(-time.Hour), Expiration: now.Add(time.Hour), Descriptor: tc.d}
			r, err := keyring.NewRing([]keyring.Key{k}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.ResolveDefaultKey(now).Default != nil; got != tc.want {
				t.Errorf("usable = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestResolveDefaultKeyRevocations checks each revocation rule's effect on the default key.
func TestResolveDefaultKeyRevocations(t *testing.T) {
	now := "2015-06-01 00:00:00Z"
	keys := []polSpec{
		{name: "old", created: "2015-01-01 00:00:00Z", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
		{name: "cur", created: "2015-03-01 00:00:00Z", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z"},
	}
	tests := []struct {
		name string
		revs []keyring.Revocation
		want polResolution
	}{
		{name: "no revocation", want: polResolution{Default: "cur"}},
		{
			name: "revocation of the default key's id",
			revs: []keyring.Revocation{{Date: polTime(t, "2015-04-01 00:00:00Z"), KeyID: polID(t, "cur")}},
			want: polResolution{Fallback: "old", ShouldGenerate: true},
		},
		{
			name: "revocation of an id not in the ring is ignored",
			revs: []keyring.Revocation{{Date: polTime(t, "2015-04-01 00:00:00Z"), KeyID: polID(t, "absent")}},
			want: polResolution{Default: "cur"},
		},
		{
			name: "revocation date of a single-key revocation does not matter",
			revs: []keyring.Revocation{{Date: polTime(t, "1990-01-01 00:00:00Z"), KeyID: polID(t, "cur")}},
			want: polResolution{Fallback: "old", ShouldGenerate: true},
		},
		{
			name: "revoke-all after every creation revokes every key",
			revs: []keyring.Revocation{{Date: polTime(t, "2015-05-01 00:00:00Z"), All: true}},
			want: polResolution{ShouldGenerate: true},
		},
		{
			name: "revoke-all equal to the creation date does not revoke",
			revs: []keyring.Revocation{{Date: polTime(t, "2015-03-01 00:00:00Z"), All: true}},
			want: polResolution{Default: "cur"},
		},
		{
			name: "revoke-all between the creations revokes only the older key",
			revs: []keyring.Revocation{{Date: polTime(t, "2015-02-01 00:00:00Z"), All: true}},
			want: polResolution{Default: "cur"},
		},
		{
			name: "only the latest revoke-all counts",
			revs: []keyring.Revocation{
				{Date: polTime(t, "2015-05-01 00:00:00Z"), All: true},
				{Date: polTime(t, "2015-02-01 00:00:00Z"), All: true},
			},
			want: polResolution{ShouldGenerate: true},
		},
		{
			name: "revoke-all in the future (clock skew) already revokes",
			revs: []keyring.Revocation{{Date: polTime(t, "2015-07-01 00:00:00Z"), All: true}},
			want: polResolution{ShouldGenerate: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, names := mustPolRing(t, keys, tc.revs...)
			res := r.ResolveDefaultKey(polTime(t, now))
			got := polResolution{Default: polName(names, res.Default), Fallback: polName(names, res.Fallback), ShouldGenerate: res.ShouldGenerate}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultKey(t *testing.T) {
	now := "2015-06-01 00:00:00Z"
	tests := []struct {
		name    string
		keys    []polSpec
		want    string
		wantErr error
	}{
		{name: "empty ring", wantErr: keyring.ErrNoDefaultKey},
		{
			name: "default key",
			keys: []polSpec{{name: "cur", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z"}},
			want: "cur",
		},
		{
			name: "fallback key when the default is missing",
			keys: []polSpec{
				{name: "expired", activation: "2014-03-01 00:00:00Z", expires: "2015-03-01 00:00:00Z"},
				{name: "revoked", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z", revoked: true},
			},
			want: "expired",
		},
		{
			name:    "only revoked keys",
			keys:    []polSpec{{name: "cur", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z", revoked: true}},
			wantErr: keyring.ErrNoDefaultKey,
		},
		{
			name:    "only unusable keys",
			keys:    []polSpec{{name: "cur", activation: "2015-03-01 00:00:00Z", expires: "2016-03-01 00:00:00Z", broken: true}},
			wantErr: keyring.ErrNoDefaultKey,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, names := mustPolRing(t, tc.keys)
			k, err := r.DefaultKey(polTime(t, now))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("DefaultKey error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got := polName(names, &k); got != tc.want {
				t.Errorf("DefaultKey = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestNodeWouldGenerateKeyUpstream ports KeyRingProviderTests.CreateCacheableKeyRing_
// UnactivatedKeyAvailable (dotnet/aspnetcore) with the real resolver instead of mocks: key1 is
// active (since now-1h), key2 activates at now+1h; the columns are hours to each expiration and
// whether the node generates a key.
func TestNodeWouldGenerateKeyUpstream(t *testing.T) {
	tests := []struct {
		hours1, hours2 int
		want           bool
	}{
		{12, 12, true}, {12, 36, true}, {12, 60, true}, {12, 84, false},
		{36, 12, true}, {36, 36, true}, {36, 60, true}, {36, 84, false},
		{60, 12, true}, {60, 36, true}, {60, 60, true}, {60, 84, false},
		{84, 12, false}, {84, 36, false}, {84, 60, false}, {84, 84, false},
	}
	now := polTime(t, "2016-02-01 00:00:00Z")
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d_%d", tc.hours1, tc.hours2), func(t *testing.T) {
			h := func(n int) time.Time { return now.Add(time.Duration(n) * time.Hour) }
			keys := []keyring.Key{
				polNewKey(t, polID(t, "key1"), time.Time{}, h(-1), h(tc.hours1)),
				polNewKey(t, polID(t, "key2"), time.Time{}, h(1), h(tc.hours2)),
			}
			r, err := keyring.NewRing(keys, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.ResolveDefaultKey(now).Default; got == nil || got.ID != polID(t, "key1") {
				t.Fatalf("default key = %v, want key1", got)
			}
			if got := r.NodeWouldGenerateKey(now); got != tc.want {
				t.Errorf("NodeWouldGenerateKey = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNodeWouldGenerateKey(t *testing.T) {
	tests := []struct {
		name string
		now  string
		keys []polSpec
		want bool
	}{
		{name: "empty ring", now: "2016-02-01 00:00:00Z", want: true},
		{
			name: "default far from expiry",
			now:  "2016-02-01 00:00:00Z",
			keys: []polSpec{{name: "k", activation: "2016-01-01 00:00:00Z", expires: "2016-04-01 00:00:00Z"}},
			want: false,
		},
		{
			name: "default expires exactly 72h later",
			now:  "2016-02-01 00:00:00Z",
			keys: []polSpec{{name: "k", activation: "2016-01-01 00:00:00Z", expires: "2016-02-04 00:00:00Z"}},
			want: false,
		},
		{
			name: "default expires 72h minus 1s later",
			now:  "2016-02-01 00:00:01Z",
			keys: []polSpec{{name: "k", activation: "2016-01-01 00:00:00Z", expires: "2016-02-04 00:00:00Z"}},
			want: true,
		},
		{
			name: "successor activating at the expiration",
			now:  "2016-02-03 00:00:00Z",
			keys: []polSpec{
				{name: "k", activation: "2016-01-01 00:00:00Z", expires: "2016-02-04 00:00:00Z"},
				{name: "s", activation: "2016-02-04 00:00:00Z", expires: "2016-05-04 00:00:00Z"},
			},
			want: false,
		},
		{
			name: "revoked successor",
			now:  "2016-02-03 00:00:00Z",
			keys: []polSpec{
				{name: "k", activation: "2016-01-01 00:00:00Z", expires: "2016-02-04 00:00:00Z"},
				{name: "s", activation: "2016-02-04 00:00:00Z", expires: "2016-05-04 00:00:00Z", revoked: true},
			},
			want: true,
		},
		{
			name: "successor activating after a gap",
			now:  "2016-02-03 00:00:00Z",
			keys: []polSpec{
				{name: "k", activation: "2016-01-01 00:00:00Z", expires: "2016-02-04 00:00:00Z"},
				{name: "s", activation: "2016-02-04 01:00:00Z", expires: "2016-05-04 00:00:00Z"},
			},
			want: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := mustPolRing(t, tc.keys)
			if got := r.NodeWouldGenerateKey(polTime(t, tc.now)); got != tc.want {
				t.Errorf("NodeWouldGenerateKey = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestProtect(t *testing.T) {
	now := polTime(t, "2016-02-01 00:00:00Z")
	r, names := mustPolRing(t, []polSpec{
		{name: "old", created: "2015-10-30 00:00:00Z", activation: "2015-11-01 00:00:00Z", expires: "2016-01-30 00:00:00Z"},
		{name: "cur", created: "2015-12-30 00:00:00Z", activation: "2016-01-01 00:00:00Z", expires: "2016-04-01 00:00:00Z"},
		{name: "next", created: "2016-03-29 00:00:00Z", activation: "2016-04-01 00:00:00Z", expires: "2016-07-01 00:00:00Z"},
	})
	purposes := keyring.Purposes("app", "purpose")
	tests := []struct {
		now  time.Time
		want string
	}{
		{now, "cur"},
		{polTime(t, "2016-03-31 23:56:00Z"), "next"}, // within the clock skew
		// All expired: the fallback is the newest propagated key other than the rejected
		// preferred one.
		{polTime(t, "2016-07-01 00:00:00Z"), "cur"},
	}
	for _, tc := range tests {
		t.Run(polFmt(tc.now), func(t *testing.T) {
			payload, err := r.Protect(tc.now, []byte("secret"), purposes)
			if err != nil {
				t.Fatal(err)
			}
			id, err := keyring.PayloadKeyID(payload)
			if err != nil {
				t.Fatal(err)
			}
			if got := names[id]; got != tc.want {
				t.Errorf("protected with %s, want %s", got, tc.want)
			}
			got, _, err := r.Unprotect(payload, purposes)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "secret" {
				t.Errorf("Unprotect = %q", got)
			}
		})
	}

	t.Run("no key", func(t *testing.T) {
		empty, _ := mustPolRing(t, nil)
		if _, err := empty.Protect(now, []byte("x"), purposes); !errors.Is(err, keyring.ErrNoDefaultKey) {
			t.Errorf("Protect on an empty ring = %v, want ErrNoDefaultKey", err)
		}
		revoked, _ := mustPolRing(t, []polSpec{{name: "cur", activation: "2016-01-01 00:00:00Z", expires: "2016-04-01 00:00:00Z", revoked: true}})
		if _, err := revoked.Protect(now, []byte("x"), purposes); !errors.Is(err, keyring.ErrNoDefaultKey) {
			t.Errorf("Protect with only a revoked key = %v, want ErrNoDefaultKey", err)
		}
	})
}
