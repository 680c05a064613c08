package keyring_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// mustReadHex reads a testdata hex file: hex bytes separated by white space, '#' to end of line
// is a comment.
func mustReadHex(tb testing.TB, name string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "tickets", name))
	if err != nil {
		tb.Fatal(err)
	}
	var digits strings.Builder
	for line := range strings.Lines(string(raw)) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

var minimalTicket = &keyring.Ticket{
	Scheme: "Cookies",
	Identities: []keyring.Identity{{
		AuthenticationType: "Cookies",
		NameClaimType:      keyring.DefaultNameClaimType,
		RoleClaimType:      keyring.DefaultRoleClaimType,
		Claims: []keyring.Claim{{
			Type:           keyring.DefaultNameClaimType,
			Value:          "alice",
			ValueType:      keyring.ClaimValueTypeString,
			Issuer:         keyring.DefaultIssuer,
			OriginalIssuer: keyring.DefaultIssuer,
		}},
	}},
	Properties: keyring.Properties{Items: keyring.Items{
		{Key: ".issued", Value: "Mon, 15 Jan 2024 00:00:00 GMT"},
		{Key: ".persistent", Value: ""},
	}},
}

var nondefaultTicket = &keyring.Ticket{
	Scheme: "",
	Identities: []keyring.Identity{{
		AuthenticationType: "",
		NameClaimType:      "name",
		RoleClaimType:      "role",
		Claims: []keyring.Claim{
			{Type: "name", Value: "bob", ValueType: "vt", Issuer: "iss", OriginalIssuer: "iss",
				Properties: keyring.Items{{Key: "k", Value: "v"}}},
			{Type: "role", Value: "admin", ValueType: keyring.ClaimValueTypeString,
				Issuer: keyring.DefaultIssuer, OriginalIssuer: "orig"},
		},
		BootstrapContext: ptr("boot"),
		Actor: &keyring.Identity{
			AuthenticationType: "act",
			NameClaimType:      keyring.DefaultNameClaimType,
			RoleClaimType:      keyring.DefaultRoleClaimType,
			Claims:             []keyring.Claim{},
		},
	}},
}

func TestTicketGoldens(t *testing.T) {
	tests := []struct {
		file   string
		ticket *keyring.Ticket
	}{
		{"minimal.hex", minimalTicket},
		{"nondefault.hex", nondefaultTicket},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			golden := mustReadHex(t, tc.file)
			got, err := tc.ticket.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, golden) {
				t.Errorf("MarshalBinary:\n got %x\nwant %x", got, golden)
			}
			parsed, err := keyring.ParseTicket(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.ticket, parsed); diff != "" {
				t.Errorf("ParseTicket mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// enc builds expected bytes by hand, independently of the package's writer.
type enc struct{ b []byte }

func (e *enc) i32(v int32) *enc { e.b = binary.LittleEndian.AppendUint32(e.b, uint32(v)); return e }
func (e *enc) str(s string) *enc {
	n := uint32(len(s))
	for n >= 0x80 {
		e.b = append(e.b, byte(n)|0x80)
		n >>= 7
	}
	e.b = append(e.b, byte(n))
	e.b = append(e.b, s...)
	return e
}
func (e *enc) def() *enc          { return e.str("\x00") }
func (e *enc) raw(b ...byte) *enc { e.b = append(e.b, b...); return e }

// oneIdentity returns the bytes of a ticket "S" with one identity whose fields after the claim
// count are given by body, and no properties.
func oneIdentity(nameType, roleType func(*enc), claims int32, body func(*enc)) []byte {
	e := &enc{}
	e.i32(5).str("S").i32(1).str("A")
	nameType(e)
	roleType(e)
	e.i32(claims)
	body(e)
	e.i32(1).i32(0)
	return e.b
}

func useDefault(e *enc)             { e.def() }
func literal(s string) func(e *enc) { return func(e *enc) { e.str(s) } }

// claimBytes is one claim with no properties, each field given as a writer.
func claimBytes(typ, value, valueType, issuer, orig func(*enc)) func(*enc) {
	return func(e *enc) {
		typ(e)
		value(e)
		valueType(e)
		issuer(e)
		orig(e)
		e.i32(0)
	}
}

func TestTicketShortcuts(t *testing.T) {
	noTail := func(e *enc) { e.raw(0, 0) } // no bootstrap, no actor
	withTail := func(claim func(*enc)) func(*enc) {
		return func(e *enc) { claim(e); noTail(e) }
	}
	std := keyring.Claim{Type: "t", Value: "v", ValueType: keyring.ClaimValueTypeString,
		Issuer: keyring.DefaultIssuer, OriginalIssuer: keyring.DefaultIssuer}
	with := func(f func(*keyring.Claim)) keyring.Claim { c := std; f(&c); return c }
	stdClaim := claimBytes(literal("t"), literal("v"), useDefault, useDefault, useDefault)
	ident := func(nameType, roleType string, claims ...keyring.Claim) keyring.Identity {
		return keyring.Identity{AuthenticationType: "A", NameClaimType: nameType, RoleClaimType: roleType, Claims: claims}
	}
	defIdent := func(claims ...keyring.Claim) keyring.Identity {
		return ident(keyring.DefaultNameClaimType, keyring.DefaultRoleClaimType, claims...)
	}

	tests := []struct {
		name string
		in   keyring.Identity
		want []byte
		// parsed is what ParseTicket returns for want, when it differs from in (normalized
		// empty fields).
		parsed *keyring.Identity
	}{
		{
			name: "name and role claim types default",
			in:   defIdent(std),
			want: oneIdentity(useDefault, useDefault, 1, withTail(stdClaim)),
		},
		{
			name:   "name and role claim types empty take the defaults",
			in:     ident("", "", std),
			want:   oneIdentity(useDefault, useDefault, 1, withTail(stdClaim)),
			parsed: ptr(defIdent(std)),
		},
		{
			name: "custom name and role claim types",
			in:   ident("n", "r", std),
			want: oneIdentity(literal("n"), literal("r"), 1, withTail(stdClaim)),
		},
		{
			name: "claim type equal to the default name claim type",
			in:   defIdent(with(func(c *keyring.Claim) { c.Type = keyring.DefaultNameClaimType })),
			want: oneIdentity(useDefault, useDefault, 1, withTail(
				claimBytes(useDefault, literal("v"), useDefault, useDefault, useDefault))),
		},
		{
			name: "claim type equal to the identity's custom name claim type",
			in:   ident("n", keyring.DefaultRoleClaimType, with(func(c *keyring.Claim) { c.Type = "n" })),
			want: oneIdentity(literal("n"), useDefault, 1, withTail(
				claimBytes(useDefault, literal("v"), useDefault, useDefault, useDefault))),
		},
		{
			name: "default name claim type is written in full when the identity's differs",
			in:   ident("n", keyring.DefaultRoleClaimType, with(func(c *keyring.Claim) { c.Type = keyring.DefaultNameClaimType })),
			want: oneIdentity(literal("n"), useDefault, 1, withTail(
				claimBytes(literal(keyring.DefaultNameClaimType), literal("v"), useDefault, useDefault, useDefault))),
		},
		{
			name: "role claim type is not a claim-type default",
			in:   defIdent(with(func(c *keyring.Claim) { c.Type = keyring.DefaultRoleClaimType })),
			want: oneIdentity(useDefault, useDefault, 1, withTail(
				claimBytes(literal(keyring.DefaultRoleClaimType), literal("v"), useDefault, useDefault, useDefault))),
		},
		{
			name: "custom value type",
			in:   defIdent(with(func(c *keyring.Claim) { c.ValueType = "http://www.w3.org/2001/XMLSchema#integer" })),
			want: oneIdentity(useDefault, useDefault, 1, withTail(
				claimBytes(literal("t"), literal("v"), literal("http://www.w3.org/2001/XMLSchema#integer"), useDefault, useDefault))),
		},
		{
			name:   "empty value type takes the default",
			in:     defIdent(with(func(c *keyring.Claim) { c.ValueType = "" })),
			want:   oneIdentity(useDefault, useDefault, 1, withTail(stdClaim)),
			parsed: ptr(defIdent(std)),
		},
		{
			name: "custom issuer, original issuer equal to it",
			in:   defIdent(with(func(c *keyring.Claim) { c.Issuer, c.OriginalIssuer = "I", "I" })),
			want: oneIdentity(useDefault, useDefault, 1, withTail(
				claimBytes(literal("t"), literal("v"), useDefault, literal("I"), useDefault))),
		},
		{
			name:   "empty issuer and original issuer take LOCAL AUTHORITY",
			in:     defIdent(with(func(c *keyring.Claim) { c.Issuer, c.OriginalIssuer = "", "" })),
			want:   oneIdentity(useDefault, useDefault, 1, withTail(stdClaim)),
			parsed: ptr(defIdent(std)),
		},
		{
			name:   "empty original issuer takes the custom issuer",
			in:     defIdent(with(func(c *keyring.Claim) { c.Issuer, c.OriginalIssuer = "I", "" })),
			want:   oneIdentity(useDefault, useDefault, 1, withTail(claimBytes(literal("t"), literal("v"), useDefault, literal("I"), useDefault))),
			parsed: ptr(defIdent(with(func(c *keyring.Claim) { c.Issuer, c.OriginalIssuer = "I", "I" }))),
		},
		{
			name: "original issuer LOCAL AUTHORITY under a custom issuer is written in full",
			in:   defIdent(with(func(c *keyring.Claim) { c.Issuer = "I" })),
			want: oneIdentity(useDefault, useDefault, 1, withTail(
				claimBytes(literal("t"), literal("v"), useDefault, literal("I"), literal(keyring.DefaultIssuer)))),
		},
		{
			name: "custom original issuer under the default issuer",
			in:   defIdent(with(func(c *keyring.Claim) { c.OriginalIssuer = "O" })),
			want: oneIdentity(useDefault, useDefault, 1, withTail(
				claimBytes(literal("t"), literal("v"), useDefault, useDefault, literal("O")))),
		},
		{
			name: "claim properties in order",
			in: defIdent(with(func(c *keyring.Claim) {
				c.Properties = keyring.Items{{Key: "z", Value: "1"}, {Key: "a", Value: ""}}
			})),
			want: oneIdentity(useDefault, useDefault, 1, func(e *enc) {
				e.str("t").str("v").def().def().def().i32(2).str("z").str("1").str("a").str("")
				noTail(e)
			}),
		},
		{
			name: "bootstrap context",
			in: func() keyring.Identity {
				id := defIdent()
				id.BootstrapContext = ptr("token")
				return id
			}(),
			want: oneIdentity(useDefault, useDefault, 0, func(e *enc) { e.raw(1).str("token").raw(0) }),
		},
		{
			name: "empty bootstrap context is not written",
			in: func() keyring.Identity {
				id := defIdent()
				id.BootstrapContext = ptr("")
				return id
			}(),
			want:   oneIdentity(useDefault, useDefault, 0, func(e *enc) { e.raw(0, 0) }),
			parsed: ptr(defIdent()),
		},
		{
			name: "actor with its own name claim type",
			in: func() keyring.Identity {
				id := defIdent()
				actor := ident("an", keyring.DefaultRoleClaimType, with(func(c *keyring.Claim) { c.Type = "an" }))
				actor.AuthenticationType = "B"
				id.Actor = &actor
				return id
			}(),
			want: oneIdentity(useDefault, useDefault, 0, func(e *enc) {
				e.raw(0, 1).str("B").str("an").def().i32(1)
				claimBytes(useDefault, literal("v"), useDefault, useDefault, useDefault)(e)
				e.raw(0, 0)
			}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &keyring.Ticket{Scheme: "S", Identities: []keyring.Identity{tc.in}}
			got, err := in.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("MarshalBinary:\n got %x\nwant %x", got, tc.want)
			}
			parsed, err := keyring.ParseTicket(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.in
			if tc.parsed != nil {
				want = *tc.parsed
			}
			if diff := cmp.Diff(want, parsed.Identities[0], cmpTicket); diff != "" {
				t.Errorf("ParseTicket mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpTicket treats nil and empty slices alike.
var cmpTicket = cmp.Options{
	cmp.Comparer(func(a, b []keyring.Claim) bool { return cmp.Equal(nilIfEmpty(a), nilIfEmpty(b)) }),
	cmp.Comparer(func(a, b keyring.Items) bool {
		return cmp.Equal([]keyring.Item(nilIfEmpty(a)), []keyring.Item(nilIfEmpty(b)))
	}),
}

func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestParseTicketReadsLikeDotNet(t *testing.T) {
	tests := []struct {
		name  string
		build func(e *enc)
		want  keyring.Identity
		props keyring.Items
	}{
		{
			name: "placeholder claim type takes the identity's custom name claim type",
			build: func(e *enc) {
				e.str("A").str("n").def().i32(1).def().str("v").def().def().def().i32(0).raw(0, 0)
			},
			want: keyring.Identity{AuthenticationType: "A", NameClaimType: "n", RoleClaimType: keyring.DefaultRoleClaimType,
				Claims: []keyring.Claim{{Type: "n", Value: "v", ValueType: keyring.ClaimValueTypeString,
					Issuer: keyring.DefaultIssuer, OriginalIssuer: keyring.DefaultIssuer}}},
		},
		{
			name: "empty strings get the constructor defaults",
			build: func(e *enc) {
				e.str("").str("").str("").i32(1).str("").str("").str("").str("").str("").i32(0).raw(0, 0)
			},
			want: keyring.Identity{NameClaimType: keyring.DefaultNameClaimType, RoleClaimType: keyring.DefaultRoleClaimType,
				Claims: []keyring.Claim{{Type: "", Value: "", ValueType: keyring.ClaimValueTypeString,
					Issuer: keyring.DefaultIssuer, OriginalIssuer: keyring.DefaultIssuer}}},
		},
		{
			name: "placeholder original issuer after an empty issuer is LOCAL AUTHORITY",
			build: func(e *enc) {
				e.str("").def().def().i32(1).str("t").str("v").def().str("").def().i32(0).raw(0, 0)
			},
			want: keyring.Identity{NameClaimType: keyring.DefaultNameClaimType, RoleClaimType: keyring.DefaultRoleClaimType,
				Claims: []keyring.Claim{{Type: "t", Value: "v", ValueType: keyring.ClaimValueTypeString,
					Issuer: keyring.DefaultIssuer, OriginalIssuer: keyring.DefaultIssuer}}},
		},
		{
			name: "non-zero boolean is true; empty bootstrap context is kept as read",
			build: func(e *enc) {
				e.str("").def().def().i32(0).raw(7).str("").raw(0)
			},
			want: keyring.Identity{NameClaimType: keyring.DefaultNameClaimType, RoleClaimType: keyring.DefaultRoleClaimType,
				Claims: []keyring.Claim{}, BootstrapContext: ptr("")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &enc{}
			e.i32(5).str("S").i32(1)
			tc.build(e)
			e.i32(1).i32(0)
			got, err := keyring.ParseTicket(e.b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Identities[0]); diff != "" {
				t.Errorf("identity mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("properties version other than 1 reads as no properties; trailing bytes ignored", func(t *testing.T) {
		e := (&enc{}).i32(5).str("S").i32(0).i32(2).raw(0xff, 0xff, 0xff)
		got, err := keyring.ParseTicket(e.b)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Properties.Items) != 0 {
			t.Errorf("properties = %v, want none", got.Properties.Items)
		}
	})
	t.Run("trailing bytes after the properties are ignored", func(t *testing.T) {
		b := append(mustReadHex(t, "minimal.hex"), 1, 2, 3)
		got, err := keyring.ParseTicket(b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(minimalTicket, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("overlong 7-bit length is accepted", func(t *testing.T) {
		e := (&enc{}).i32(5).raw(0x81, 0x00, 'S').i32(0).i32(1).i32(0)
		got, err := keyring.ParseTicket(e.b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Scheme != "S" {
			t.Errorf("scheme = %q, want S", got.Scheme)
		}
	})
}

func TestStringLengthPrefixes(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 300, 16383, 16384} {
		s := strings.Repeat("x", n)
		tk := &keyring.Ticket{Scheme: s}
		b, err := tk.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want := (&enc{}).i32(5).str(s).i32(0).i32(1).i32(0).b
		if !bytes.Equal(b, want) {
			t.Errorf("len %d: prefix % x, want % x", n, b[4:min(len(b), 8)], want[4:min(len(want), 8)])
		}
		got, err := keyring.ParseTicket(b)
		if err != nil || got.Scheme != s {
			t.Errorf("len %d: round trip failed: %v", n, err)
		}
	}
}

func TestParseTicketMalformed(t *testing.T) {
	deep := &enc{}
	deep.i32(5).str("S").i32(1)
	for range 70 {
		deep.str("").def().def().i32(0).raw(0, 1)
	}
	deep.str("").def().def().i32(0).raw(0, 0).i32(1).i32(0)

	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 4", (&enc{}).i32(4).str("S").i32(0).i32(1).i32(0).b},
		{"negative identity count", (&enc{}).i32(5).str("S").i32(-1).i32(1).i32(0).b},
		{"identity count larger than the input", (&enc{}).i32(5).str("S").i32(1 << 30).b},
		{"negative claim count", (&enc{}).i32(5).str("S").i32(1).str("").def().def().i32(-1).raw(0, 0).i32(1).i32(0).b},
		{"claim count larger than the input", (&enc{}).i32(5).str("S").i32(1).str("").def().def().i32(1000).raw(0, 0).i32(1).i32(0).b},
		{"negative string length", (&enc{}).i32(5).raw(0xff, 0xff, 0xff, 0xff, 0x0f).b},
		{"bad 7-bit length", (&enc{}).i32(5).raw(0xff, 0xff, 0xff, 0xff, 0x10).b},
		{"string longer than the input", (&enc{}).i32(5).raw(0x10, 'S').b},
		{"negative property count", (&enc{}).i32(5).str("S").i32(0).i32(1).i32(-1).b},
		{"duplicate property key", (&enc{}).i32(5).str("S").i32(0).i32(1).i32(2).str("k").str("1").str("k").str("2").b},
		{"duplicate claim property key", (&enc{}).i32(5).str("S").i32(1).str("").def().def().i32(1).
			str("t").str("v").def().def().def().i32(2).str("k").str("").str("k").str("").raw(0, 0).i32(1).i32(0).b},
		{"actors nested too deep", deep.b},
		{"missing properties", (&enc{}).i32(5).str("S").i32(0).b},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keyring.ParseTicket(tc.b)
			if !errors.Is(err, keyring.ErrMalformedTicket) {
				t.Errorf("err = %v, want ErrMalformedTicket", err)
			}
		})
	}

	for _, file := range []string{"minimal.hex", "nondefault.hex"} {
		golden := mustReadHex(t, file)
		for n := range len(golden) {
			if _, err := keyring.ParseTicket(golden[:n]); !errors.Is(err, keyring.ErrMalformedTicket) {
				t.Errorf("%s truncated to %d bytes: err = %v, want ErrMalformedTicket", file, n, err)
			}
		}
	}
}

func TestMarshalBinaryRejects(t *testing.T) {
	dupProps := &keyring.Ticket{Properties: keyring.Properties{Items: keyring.Items{{Key: "a"}, {Key: "a"}}}}
	if _, err := dupProps.MarshalBinary(); err == nil {
		t.Error("duplicate property keys: no error")
	}
	dupClaimProps := &keyring.Ticket{Identities: []keyring.Identity{{Claims: []keyring.Claim{{
		Properties: keyring.Items{{Key: "a"}, {Key: "a"}}}}}}}
	if _, err := dupClaimProps.MarshalBinary(); err == nil {
		t.Error("duplicate claim property keys: no error")
	}
}

func TestProperties(t *testing.T) {
	var p keyring.Properties
	if _, ok := p.Issued(); ok {
		t.Error("empty properties: Issued ok")
	}
	if p.IsPersistent() {
		t.Error("empty properties: persistent")
	}
	issued := time.Date(2024, 1, 15, 10, 30, 45, 999, time.FixedZone("x", 3600))
	p.SetIssued(issued)
	p.SetExpires(issued.Add(14 * 24 * time.Hour))
	p.SetPersistent(true)
	want := keyring.Items{
		{Key: ".issued", Value: "Mon, 15 Jan 2024 09:30:45 GMT"},
		{Key: ".expires", Value: "Mon, 29 Jan 2024 09:30:45 GMT"},
		{Key: ".persistent", Value: ""},
	}
	if diff := cmp.Diff(want, p.Items); diff != "" {
		t.Errorf("items mismatch (-want +got):\n%s", diff)
	}
	if got, ok := p.Issued(); !ok || !got.Equal(issued.Truncate(time.Second)) {
		t.Errorf("Issued = %v, %v", got, ok)
	}
	if got, ok := p.Expires(); !ok || !got.Equal(issued.Truncate(time.Second).Add(14*24*time.Hour)) {
		t.Errorf("Expires = %v, %v", got, ok)
	}
	if !p.IsPersistent() {
		t.Error("not persistent")
	}
	p.SetPersistent(false)
	if p.IsPersistent() {
		t.Error("still persistent")
	}

	for _, bad := range []string{
		"Tue, 15 Jan 2024 00:00:00 GMT", // wrong day of the week
		"Mon, 15 Jan 2024 00:00:00 UTC",
		"Mon, 15 Jan 2024 00:00:00 GMT ",
		"2024-01-15T00:00:00Z",
		"Mon, 5 Jan 2024 00:00:00 GMT",
	} {
		q := keyring.Properties{Items: keyring.Items{{Key: ".expires", Value: bad}}}
		if got, ok := q.Expires(); ok {
			t.Errorf("Expires(%q) = %v, want not ok", bad, got)
		}
	}
}

func TestTicketJSON(t *testing.T) {
	got, err := json.Marshal(minimalTicket)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"scheme":"Cookies","identities":[{"authentication_type":"Cookies",` +
		`"name_claim_type":"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",` +
		`"role_claim_type":"http://schemas.microsoft.com/ws/2008/06/identity/claims/role",` +
		`"claims":[{"type":"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name","value":"alice",` +
		`"value_type":"http://www.w3.org/2001/XMLSchema#string","issuer":"LOCAL AUTHORITY",` +
		`"original_issuer":"LOCAL AUTHORITY","properties":{}}]}],` +
		`"properties":{"items":{".issued":"Mon, 15 Jan 2024 00:00:00 GMT",".persistent":""},` +
		`"issued":"2024-01-15T00:00:00Z","persistent":true}}`
	if string(got) != want {
		t.Errorf("JSON:\n got %s\nwant %s", got, want)
	}

	var back keyring.Ticket
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(minimalTicket, &back, cmpTicket); diff != "" {
		t.Errorf("JSON round trip mismatch (-want +got):\n%s", diff)
	}

	nd, err := json.Marshal(nondefaultTicket)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"properties":{"k":"v"}`, `"bootstrap_context":"boot"`, `"actor":{"authentication_type":"act"`} {
		if !strings.Contains(string(nd), frag) {
			t.Errorf("JSON %s lacks %s", nd, frag)
		}
	}
}

func TestItemsJSONKeepsOrder(t *testing.T) {
	var items keyring.Items
	if err := json.Unmarshal([]byte(`{"z":"1","a":"2","m":""}`), &items); err != nil {
		t.Fatal(err)
	}
	want := keyring.Items{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}, {Key: "m", Value: ""}}
	if diff := cmp.Diff(want, items); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`[]`, `{"a":1}`, `{"a":"1","a":"2"}`, `{"a":"1"`} {
		var it keyring.Items
		if err := json.Unmarshal([]byte(bad), &it); err == nil {
			t.Errorf("Unmarshal(%s): no error", bad)
		}
	}
}
