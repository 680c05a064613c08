package keyring

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults of System.Security.Claims that TicketSerializer abbreviates to the placeholder "\0".
const (
	// DefaultNameClaimType is ClaimsIdentity.DefaultNameClaimType (ClaimTypes.Name).
	DefaultNameClaimType = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
	// DefaultRoleClaimType is ClaimsIdentity.DefaultRoleClaimType (ClaimTypes.Role).
	DefaultRoleClaimType = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
	// DefaultIssuer is ClaimsIdentity.DefaultIssuer, the issuer of a claim created without one.
	DefaultIssuer = "LOCAL AUTHORITY"
	// ClaimValueTypeString is ClaimValueTypes.String, the value type of a claim created without one.
	ClaimValueTypeString = "http://www.w3.org/2001/XMLSchema#string"
)

const (
	ticketFormatVersion     = 5
	propertiesFormatVersion = 1
	// defaultPlaceholder is TicketSerializer's DefaultStringPlaceholder.
	defaultPlaceholder = "\x00"
	// maxActorDepth bounds the nesting of actor identities. .NET recurses without a limit (until
	// its stack runs out); real tickets have zero or one actor.
	maxActorDepth = 64

	propIssued     = ".issued"
	propExpires    = ".expires"
	propPersistent = ".persistent"
	// httpDateLayout is .NET's "r" (RFC 1123) format, which AuthenticationProperties uses for
	// .issued and .expires.
	httpDateLayout = "Mon, 02 Jan 2006 15:04:05 GMT"
)

// Ticket is an ASP.NET Core AuthenticationTicket as TicketSerializer (format version 5) writes
// it: the authentication scheme, the principal's identities and the authentication properties.
//
// Strings hold the bytes as read. Where the bytes are not valid UTF-8, .NET would substitute
// U+FFFD on reading; Ticket keeps them as they are, so a ticket re-serializes byte for byte.
type Ticket struct {
	// Scheme is the authentication scheme, such as "Cookies" or "UmbracoBackOffice".
	Scheme string `json:"scheme"`
	// Identities are the ClaimsPrincipal's identities, in order.
	Identities []Identity `json:"identities"`
	// Properties are the AuthenticationProperties items.
	Properties Properties `json:"properties"`
}

// Identity is a ClaimsIdentity as TicketSerializer writes it. Its Label is not serialized by
// format 5, so it is not here.
type Identity struct {
	// AuthenticationType is the identity's authentication type ("" when null).
	AuthenticationType string `json:"authentication_type"`
	// NameClaimType is the claim type of the identity's name; "" means [DefaultNameClaimType].
	NameClaimType string `json:"name_claim_type"`
	// RoleClaimType is the claim type of the identity's roles; "" means [DefaultRoleClaimType].
	RoleClaimType string `json:"role_claim_type"`
	// Claims are the identity's claims, in order.
	Claims []Claim `json:"claims"`
	// BootstrapContext is the bootstrap context when it is a string (TicketSerializer writes no
	// other kind, and writes none when it is empty), or nil.
	BootstrapContext *string `json:"bootstrap_context,omitempty"`
	// Actor is the identity acting on behalf of this one, or nil.
	Actor *Identity `json:"actor,omitempty"`
}

// Claim is a System.Security.Claims.Claim.
type Claim struct {
	// Type is the claim type; in the binary format it defaults to the enclosing identity's
	// NameClaimType.
	Type string `json:"type"`
	// Value is the claim value.
	Value string `json:"value"`
	// ValueType is the value type; "" means [ClaimValueTypeString].
	ValueType string `json:"value_type"`
	// Issuer is the issuer; "" means [DefaultIssuer].
	Issuer string `json:"issuer"`
	// OriginalIssuer is the original issuer; "" means Issuer.
	OriginalIssuer string `json:"original_issuer"`
	// Properties are the claim's properties, in insertion order.
	Properties Items `json:"properties"`
}

// Item is one key/value pair of an ordered string dictionary.
type Item struct {
	Key   string
	Value string
}

// Items is an ordered string dictionary, such as a claim's properties or the items of
// AuthenticationProperties. Order matters for byte-exact re-serialization (.NET dictionaries
// enumerate in insertion order). It renders in JSON as an object with the keys in order.
type Items []Item

// Get returns the value of key and whether it is present.
func (s Items) Get(key string) (string, bool) {
	for _, it := range s {
		if it.Key == key {
			return it.Value, true
		}
	}
	return "", false
}

// Set replaces the value of key in place, or appends it, as a .NET dictionary's indexer does.
func (s *Items) Set(key, value string) {
	for i := range *s {
		if (*s)[i].Key == key {
			(*s)[i].Value = value
			return
		}
	}
	*s = append(*s, Item{Key: key, Value: value})
}

// Delete removes key if present, keeping the order of the others.
func (s *Items) Delete(key string) {
	for i := range *s {
		if (*s)[i].Key == key {
			*s = append((*s)[:i:i], (*s)[i+1:]...)
			return
		}
	}
}

// MarshalJSON renders the items as a JSON object with the keys in order ({} when empty).
func (s Items) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, it := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(it.Key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(it.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads a JSON object of strings, keeping the keys in order. null gives no items.
func (s *Items) UnmarshalJSON(data []byte) error {
	d := json.NewDecoder(bytes.NewReader(data))
	tok, err := d.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		*s = nil
		return nil
	}
	if tok != json.Delim('{') {
		return errors.New("keyring: items must be a JSON object")
	}
	var out Items
	for d.More() {
		kt, err := d.Token()
		if err != nil {
			return err
		}
		var v string
		if err := d.Decode(&v); err != nil {
			return err
		}
		k := kt.(string) // object keys are always strings
		if _, dup := out.Get(k); dup {
			return fmt.Errorf("keyring: duplicate item key %q", k)
		}
		out = append(out, Item{Key: k, Value: v})
	}
	if _, err := d.Token(); err != nil {
		return err
	}
	*s = out
	return nil
}

// Properties are the items of an AuthenticationProperties, as PropertiesSerializer (format
// version 1) writes them, in insertion order.
//
// In JSON they render as an object:
//
//	{"items": {".issued": "Mon, 15 Jan 2024 00:00:00 GMT", ...},
//	 "issued": "2024-01-15T00:00:00Z", "expires": "...", "persistent": true}
//
// "issued" and "expires" are RFC 3339 in UTC and appear only when the item is present and
// parses as AuthenticationProperties parses it; "persistent" is always present. Only "items" is
// read back by UnmarshalJSON.
type Properties struct {
	// Items are the property items, such as ".issued", ".expires" and ".persistent".
	Items Items
}

// Issued returns the .issued item (AuthenticationProperties.IssuedUtc) and whether it is present
// and valid.
func (p Properties) Issued() (time.Time, bool) { return p.date(propIssued) }

// Expires returns the .expires item (AuthenticationProperties.ExpiresUtc) and whether it is
// present and valid.
func (p Properties) Expires() (time.Time, bool) { return p.date(propExpires) }

// IsPersistent reports whether the .persistent item is present, as
// AuthenticationProperties.IsPersistent does.
func (p Properties) IsPersistent() bool {
	_, ok := p.Items.Get(propPersistent)
	return ok
}

// SetIssued sets the .issued item as AuthenticationProperties.IssuedUtc does (RFC 1123, whole
// seconds, UTC).
func (p *Properties) SetIssued(t time.Time) { p.Items.Set(propIssued, formatHTTPDate(t)) }

// SetExpires sets the .expires item as AuthenticationProperties.ExpiresUtc does.
func (p *Properties) SetExpires(t time.Time) { p.Items.Set(propExpires, formatHTTPDate(t)) }

// SetPersistent sets (value "") or removes the .persistent item, as
// AuthenticationProperties.IsPersistent does.
func (p *Properties) SetPersistent(persistent bool) {
	if persistent {
		p.Items.Set(propPersistent, "")
		return
	}
	p.Items.Delete(propPersistent)
}

func (p Properties) date(key string) (time.Time, bool) {
	v, ok := p.Items.Get(key)
	if !ok {
		return time.Time{}, false
	}
	t, err := parseHTTPDate(v)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

type propertiesJSON struct {
	Items      Items      `json:"items"`
	Issued     *time.Time `json:"issued,omitempty"`
	Expires    *time.Time `json:"expires,omitempty"`
	Persistent bool       `json:"persistent"`
}

// MarshalJSON renders the properties as documented on [Properties].
func (p Properties) MarshalJSON() ([]byte, error) {
	j := propertiesJSON{Items: p.Items, Persistent: p.IsPersistent()}
	if t, ok := p.Issued(); ok {
		j.Issued = &t
	}
	if t, ok := p.Expires(); ok {
		j.Expires = &t
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the "items" of the form [Properties.MarshalJSON] writes.
func (p *Properties) UnmarshalJSON(data []byte) error {
	var j struct {
		Items Items `json:"items"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	p.Items = j.Items
	return nil
}

// formatHTTPDate is DateTimeOffset.ToString("r", InvariantCulture).
func formatHTTPDate(t time.Time) string { return t.UTC().Format(httpDateLayout) }

// parseHTTPDate is DateTimeOffset.TryParseExact(s, "r", InvariantCulture, RoundtripKind): exactly
// the RFC 1123 form, with a day name that must match the date.
func parseHTTPDate(s string) (time.Time, error) {
	if len(s) != len(httpDateLayout) {
		return time.Time{}, fmt.Errorf("keyring: invalid RFC 1123 date %q", s)
	}
	t, err := time.Parse(httpDateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("keyring: invalid RFC 1123 date %q", s)
	}
	if t.Weekday().String()[:3] != s[:3] {
		return time.Time{}, fmt.Errorf("keyring: invalid RFC 1123 date %q: wrong day of the week", s)
	}
	return t, nil
}

// ParseTicket decodes a ticket written by ASP.NET Core's TicketSerializer (format version 5), as
// TicketSerializer.Read does: "\0" placeholders are replaced by their defaults, empty value types
// and issuers take the defaults the Claim constructor gives them, and bytes after the
// properties are ignored. A properties block whose version is not 1 reads as no properties, as in
// .NET.
//
// It returns an error wrapping [ErrMalformedTicket] for anything .NET would reject (wrong version,
// negative or oversized counts, truncation, duplicate dictionary keys, bad 7-bit lengths). Counts
// and lengths are checked against the remaining input before anything is allocated.
func ParseTicket(b []byte) (*Ticket, error) {
	return parseTicketString(string(b))
}

// parseTicketString is [ParseTicket] over the ticket bytes held as a string: every string of the
// ticket is a substring of s.
func parseTicketString(s string) (*Ticket, error) {
	r := ticketReader{s: s}
	t, err := r.ticket()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedTicket, err)
	}
	return t, nil
}

// ticketReader is .NET's BinaryReader over the ticket bytes. It holds them as one string so that
// every string it reads is a substring sharing that memory (one allocation for all of them).
type ticketReader struct {
	s   string
	off int
}

var errTruncated = errors.New("unexpected end of data")

func (r *ticketReader) remaining() int { return len(r.s) - r.off }

func (r *ticketReader) int32() (int32, error) {
	if r.remaining() < 4 {
		return 0, errTruncated
	}
	s := r.s[r.off:]
	v := int32(uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24)
	r.off += 4
	return v, nil
}

func (r *ticketReader) bool() (bool, error) {
	if r.remaining() < 1 {
		return false, errTruncated
	}
	v := r.s[r.off] != 0
	r.off++
	return v, nil
}

// read7BitInt is BinaryReader.Read7BitEncodedInt: at most 5 bytes, the fifth no more than 0x0F.
func (r *ticketReader) read7BitInt() (int32, error) {
	var v uint32
	for shift := 0; shift < 28; shift += 7 {
		if r.remaining() < 1 {
			return 0, errTruncated
		}
		c := r.s[r.off]
		r.off++
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return int32(v), nil
		}
	}
	if r.remaining() < 1 {
		return 0, errTruncated
	}
	c := r.s[r.off]
	r.off++
	if c > 0x0f {
		return 0, errors.New("bad 7-bit encoded length")
	}
	v |= uint32(c) << 28
	return int32(v), nil
}

// string is BinaryReader.ReadString: a 7-bit length, then that many UTF-8 bytes.
func (r *ticketReader) string() (string, error) {
	// Fast path: a length below 128 (one byte) and the bytes all present.
	if r.off < len(r.s) {
		if n := int(r.s[r.off]); n < 0x80 && n < len(r.s)-r.off {
			s := r.s[r.off+1 : r.off+1+n]
			r.off += 1 + n
			return s, nil
		}
	}
	return r.longString()
}

// longString is string for lengths of more than one byte, and for truncated input.
func (r *ticketReader) longString() (string, error) {
	n, err := r.read7BitInt()
	if err != nil {
		return "", err
	}
	if n < 0 {
		return "", fmt.Errorf("negative string length %d", n)
	}
	if int64(n) > int64(r.remaining()) {
		return "", errTruncated
	}
	s := r.s[r.off : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

func (r *ticketReader) stringWithDefault(def string) (string, error) {
	s, err := r.string()
	if err != nil {
		return "", err
	}
	if s == defaultPlaceholder {
		return def, nil
	}
	return s, nil
}

// count reads an int32 count of records at least minSize bytes long each, and rejects it if it
// is negative or the remaining input cannot hold that many.
func (r *ticketReader) count(what string, minSize int) (int, error) {
	n, err := r.int32()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("negative %s count %d", what, n)
	}
	if int64(n)*int64(minSize) > int64(r.remaining()) {
		return 0, fmt.Errorf("%s count %d exceeds the remaining %d bytes", what, n, r.remaining())
	}
	return int(n), nil
}

const (
	minIdentitySize = 1 + 1 + 1 + 4 + 1 + 1 // three strings, claim count, two booleans
	minClaimSize    = 5 + 4                 // five strings, property count
	minItemSize     = 2                     // two strings
)

func (r *ticketReader) ticket() (*Ticket, error) {
	v, err := r.int32()
	if err != nil {
		return nil, err
	}
	if v != ticketFormatVersion {
		return nil, fmt.Errorf("format version %d, want %d", v, ticketFormatVersion)
	}
	scheme, err := r.string()
	if err != nil {
		return nil, err
	}
	n, err := r.count("identity", minIdentitySize)
	if err != nil {
		return nil, err
	}
	var t *Ticket
	if n == 1 {
		// The usual single identity shares the ticket's allocation.
		one := &struct {
			t  Ticket
			id [1]Identity
		}{}
		t = &one.t
		t.Identities = one.id[:]
	} else {
		t = &Ticket{Identities: make([]Identity, n)}
	}
	t.Scheme = scheme
	for i := range t.Identities {
		if err := r.identity(&t.Identities[i], 0); err != nil {
			return nil, err
		}
	}
	if t.Properties, err = r.properties(); err != nil {
		return nil, err
	}
	return t, nil
}

// identity reads an identity into id.
func (r *ticketReader) identity(id *Identity, depth int) error {
	if depth > maxActorDepth {
		return fmt.Errorf("actors nested more than %d deep", maxActorDepth)
	}
	var err error
	if id.AuthenticationType, err = r.string(); err != nil {
		return err
	}
	// The ClaimsIdentity constructor turns an empty claim type into the default too.
	if id.NameClaimType, err = r.stringWithDefault(DefaultNameClaimType); err != nil {
		return err
	}
	if id.NameClaimType == "" {
		id.NameClaimType = DefaultNameClaimType
	}
	if id.RoleClaimType, err = r.stringWithDefault(DefaultRoleClaimType); err != nil {
		return err
	}
	if id.RoleClaimType == "" {
		id.RoleClaimType = DefaultRoleClaimType
	}
	n, err := r.count("claim", minClaimSize)
	if err != nil {
		return err
	}
	id.Claims = make([]Claim, n)
	for i := range id.Claims {
		if err := r.claim(&id.Claims[i], id.NameClaimType); err != nil {
			return err
		}
	}
	has, err := r.bool()
	if err != nil {
		return err
	}
	if has {
		s, err := r.string()
		if err != nil {
			return err
		}
		id.BootstrapContext = &s
	}
	if has, err = r.bool(); err != nil {
		return err
	}
	if has {
		id.Actor = &Identity{}
		if err := r.identity(id.Actor, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// claim reads a claim of an identity whose name claim type is nameClaimType into c.
func (r *ticketReader) claim(c *Claim, nameClaimType string) error {
	var err error
	if c.Type, err = r.stringWithDefault(nameClaimType); err != nil {
		return err
	}
	if c.Value, err = r.string(); err != nil {
		return err
	}
	if c.ValueType, err = r.stringWithDefault(ClaimValueTypeString); err != nil {
		return err
	}
	if c.Issuer, err = r.stringWithDefault(DefaultIssuer); err != nil {
		return err
	}
	// The default of the original issuer is the issuer as read, before the Claim constructor
	// replaces an empty one.
	if c.OriginalIssuer, err = r.stringWithDefault(c.Issuer); err != nil {
		return err
	}
	normalizeClaim(c)
	if c.Properties, err = r.items("claim property"); err != nil {
		return err
	}
	return nil
}

// items reads a count and that many key/value pairs into a dictionary that, like .NET's
// Dictionary.Add, rejects duplicate keys.
func (r *ticketReader) items(what string) (Items, error) {
	n, err := r.count(what, minItemSize)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	out := make(Items, 0, n)
	for range n {
		k, err := r.string()
		if err != nil {
			return nil, err
		}
		v, err := r.string()
		if err != nil {
			return nil, err
		}
		out = append(out, Item{Key: k, Value: v})
	}
	if hasDuplicateKey(out) {
		return nil, fmt.Errorf("duplicate %s key", what)
	}
	return out, nil
}

// hasDuplicateKey reports whether two items share a key: by comparing pairs for the few items
// tickets usually carry, with a map beyond that.
func hasDuplicateKey(items Items) bool {
	if len(items) <= 16 {
		for i := range items {
			for j := i + 1; j < len(items); j++ {
				if items[i].Key == items[j].Key {
					return true
				}
			}
		}
		return false
	}
	seen := make(map[string]struct{}, len(items))
	for _, it := range items {
		if _, dup := seen[it.Key]; dup {
			return true
		}
		seen[it.Key] = struct{}{}
	}
	return false
}

func (r *ticketReader) properties() (Properties, error) {
	v, err := r.int32()
	if err != nil {
		return Properties{}, err
	}
	if v != propertiesFormatVersion {
		// PropertiesSerializer.Read returns null and the ticket gets empty properties.
		return Properties{}, nil
	}
	items, err := r.items("property")
	if err != nil {
		return Properties{}, err
	}
	return Properties{Items: items}, nil
}

// normalizeClaim applies what the Claim constructor does to empty value types and issuers.
func normalizeClaim(c *Claim) {
	if c.ValueType == "" {
		c.ValueType = ClaimValueTypeString
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.OriginalIssuer == "" {
		c.OriginalIssuer = c.Issuer
	}
}

// MarshalBinary serializes the ticket as TicketSerializer.Write does, byte for byte: a value equal
// to its default is written as the "\0" placeholder (name and role claim types; a claim type
// equal to the identity's name claim type; the string value type; the LOCAL AUTHORITY issuer;
// an original issuer equal to the issuer), an empty bootstrap context is not written, and the
// properties follow as PropertiesSerializer format 1.
//
// Empty NameClaimType, RoleClaimType, ValueType, Issuer and OriginalIssuer take the defaults
// .NET's constructors give them first. A field whose value is literally "\0" cannot be
// represented (TicketSerializer would read it back as the default). It returns an error if a
// dictionary has duplicate keys, actors are nested more than 64 deep, or a string or count does
// not fit in an int32.
func (t *Ticket) MarshalBinary() ([]byte, error) {
	w := &ticketWriter{}
	w.int32(ticketFormatVersion)
	w.string(t.Scheme)
	w.count(len(t.Identities))
	for i := range t.Identities {
		if err := w.identity(&t.Identities[i], 0); err != nil {
			return nil, err
		}
	}
	w.int32(propertiesFormatVersion)
	if err := w.items(t.Properties.Items, "property"); err != nil {
		return nil, err
	}
	if w.err != nil {
		return nil, w.err
	}
	return w.b, nil
}

// ticketWriter is .NET's BinaryWriter appending to a byte slice.
type ticketWriter struct {
	b   []byte
	err error
}

func (w *ticketWriter) int32(v int32) { w.b = binary.LittleEndian.AppendUint32(w.b, uint32(v)) }

func (w *ticketWriter) count(n int) {
	if n > math.MaxInt32 {
		w.err = errors.New("keyring: ticket: count does not fit in an int32")
		return
	}
	w.int32(int32(n))
}

func (w *ticketWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

// string is BinaryWriter.Write(string): the 7-bit encoded byte length, then the bytes.
func (w *ticketWriter) string(s string) {
	if len(s) > math.MaxInt32 {
		w.err = errors.New("keyring: ticket: string does not fit in an int32 length")
		return
	}
	w.b = append7BitInt(w.b, uint32(len(s)))
	w.b = append(w.b, s...)
}

func append7BitInt(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func (w *ticketWriter) stringWithDefault(s, def string) {
	if s == def {
		w.string(defaultPlaceholder)
		return
	}
	w.string(s)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (w *ticketWriter) identity(id *Identity, depth int) error {
	if depth > maxActorDepth {
		return fmt.Errorf("keyring: ticket: actors nested more than %d deep", maxActorDepth)
	}
	nameType := orDefault(id.NameClaimType, DefaultNameClaimType)
	w.string(id.AuthenticationType)
	w.stringWithDefault(nameType, DefaultNameClaimType)
	w.stringWithDefault(orDefault(id.RoleClaimType, DefaultRoleClaimType), DefaultRoleClaimType)
	w.count(len(id.Claims))
	for i := range id.Claims {
		c := id.Claims[i]
		normalizeClaim(&c)
		w.stringWithDefault(c.Type, nameType)
		w.string(c.Value)
		w.stringWithDefault(c.ValueType, ClaimValueTypeString)
		w.stringWithDefault(c.Issuer, DefaultIssuer)
		w.stringWithDefault(c.OriginalIssuer, c.Issuer)
		if err := w.items(c.Properties, "claim property"); err != nil {
			return err
		}
	}
	if id.BootstrapContext != nil && *id.BootstrapContext != "" {
		w.bool(true)
		w.string(*id.BootstrapContext)
	} else {
		w.bool(false)
	}
	if id.Actor == nil {
		w.bool(false)
		return nil
	}
	w.bool(true)
	return w.identity(id.Actor, depth+1)
}

func (w *ticketWriter) items(items Items, what string) error {
	if hasDuplicateKey(items) {
		return fmt.Errorf("keyring: ticket: duplicate %s key", what)
	}
	w.count(len(items))
	for _, it := range items {
		w.string(it.Key)
		w.string(it.Value)
	}
	return nil
}
