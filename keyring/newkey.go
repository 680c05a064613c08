package keyring

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"time"
)

// masterKeySize is KDK_SIZE_IN_BYTES: ASP.NET Core's new keys get 512 random bits.
const masterKeySize = 64

// NewKey returns a new key as ASP.NET Core's XmlKeyManager.CreateNewKey makes one with the
// default algorithms: a random lowercase GUID, 64 random bytes of master key from crypto/rand,
// AES_256_CBC with HMACSHA256, and the current AuthenticatedEncryptorDescriptorDeserializer type
// name. The dates are kept to .NET's 100 ns precision, in UTC. Key.XML holds the element
// ([MarshalKey]).
func NewKey(created, activation, expiration time.Time) (Key, error) {
	id, err := NewKeyID()
	if err != nil {
		return Key{}, err
	}
	mk := make([]byte, masterKeySize)
	if _, err := rand.Read(mk); err != nil {
		return Key{}, fmt.Errorf("keyring: generating master key: %w", err)
	}
	return newKeyFrom(id, mk, created, activation, expiration)
}

// newKeyFrom is NewKey with the id and master key given, for deterministic tests.
func newKeyFrom(id KeyID, masterKey []byte, created, activation, expiration time.Time) (Key, error) {
	k := Key{
		ID:               id,
		Created:          xmlTime(created),
		Activation:       xmlTime(activation),
		Expiration:       xmlTime(expiration),
		Descriptor:       &Descriptor{Encryption: AES256CBC, Validation: HMACSHA256, MasterKey: NewSecret(masterKey)},
		DeserializerType: defaultDeserializerAQN,
		Protection:       ProtectionNone,
	}
	x, err := MarshalKey(k)
	if err != nil {
		return Key{}, err
	}
	k.XML = x
	return k, nil
}

// xmlTime is t as it reads back from the XML: UTC, 100 ns precision.
func xmlTime(t time.Time) time.Time { return t.UTC().Truncate(100 * time.Nanosecond) }

// Element-building helpers for the writers.
func xel(local string, attrs []xml.Attr, children ...*node) *node {
	return &node{kind: elementNode, name: xml.Name{Local: local}, attrs: attrs, children: children}
}

func xtext(s string) *node {
	if s == "" {
		return nil
	}
	return &node{kind: textNode, text: s}
}

func xcomment(s string) *node { return &node{kind: commentNode, text: s} }

func xattr(local, value string) xml.Attr {
	return xml.Attr{Name: xml.Name{Local: local}, Value: value}
}

// withChildren drops nil children (empty text).
func withChildren(n *node) *node {
	kept := n.children[:0]
	for _, c := range n.children {
		if c != nil {
			kept = append(kept, withChildren(c))
		}
	}
	n.children = kept
	return n
}

// MarshalKey returns the key element, compact, exactly as XmlKeyManager.CreateNewKey and
// AuthenticatedEncryptorDescriptor.ExportToXml write it, with the master key unencrypted (as a
// node with no IXmlEncryptor stores it):
//
//	<key id="…" version="1"><creationDate>…</creationDate><activationDate>…</activationDate>
//	<expirationDate>…</expirationDate><descriptor deserializerType="…"><descriptor>
//	<encryption algorithm="AES_256_CBC" /><validation algorithm="HMACSHA256" />
//	<masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection">
//	<!-- Warning: the key below is in an unencrypted form. --><value>…</value></masterKey>
//	</descriptor></descriptor></key>
//
// (one line in reality). GCM keys get ASP.NET Core's comment in place of <validation>. Dates are
// written in UTC ("Z"). The deserializer type is k.DeserializerType when it names
// AuthenticatedEncryptorDescriptorDeserializer (any version), else the current one. It returns an
// error wrapping [ErrUnsupportedAlgorithm] for algorithms that descriptor cannot express
// (HMACSHA1, HMACSHA384) and [ErrMalformedKey] for a key without a descriptor.
func MarshalKey(k Key) ([]byte, error) {
	d := k.Descriptor
	if d == nil {
		return nil, fmt.Errorf("%w: key %s has no descriptor to write", ErrMalformedKey, k.ID)
	}
	if d.Encryption.KeySize() == 0 {
		return nil, fmt.Errorf("%w: encryption %v", ErrUnsupportedAlgorithm, d.Encryption)
	}
	validation := xcomment(" AES-GCM includes a 128-bit authentication tag, no extra validation algorithm required. ")
	if !d.Encryption.IsGCM() {
		if d.Validation != HMACSHA256 && d.Validation != HMACSHA512 {
			return nil, fmt.Errorf("%w: validation %v cannot be written in the default descriptor", ErrUnsupportedAlgorithm, d.Validation)
		}
		validation = xel("validation", []xml.Attr{xattr("algorithm", d.Validation.String())})
	}
	deserializer := defaultDeserializerAQN
	if full, ours := forwardTypeName(k.DeserializerType); ours && full == authenticatedDeserializer {
		deserializer = k.DeserializerType
	}
	masterKey := xel("masterKey", []xml.Attr{
		{Name: xml.Name{Space: "p4", Local: "requiresEncryption"}, Value: "true"},
		{Name: xml.Name{Space: "xmlns", Local: "p4"}, Value: dataProtectionNS},
	},
		xcomment(" Warning: the key below is in an unencrypted form. "),
		xel("value", nil, xtext(base64.StdEncoding.EncodeToString(d.MasterKey.Bytes()))))
	key := xel("key", []xml.Attr{xattr("id", k.ID.String()), xattr("version", "1")},
		xel("creationDate", nil, xtext(FormatXMLDate(k.Created))),
		xel("activationDate", nil, xtext(FormatXMLDate(k.Activation))),
		xel("expirationDate", nil, xtext(FormatXMLDate(k.Expiration))),
		xel("descriptor", []xml.Attr{xattr("deserializerType", deserializer)},
			xel("descriptor", nil,
				xel("encryption", []xml.Attr{xattr("algorithm", d.Encryption.String())}),
				validation,
				masterKey)))
	return withChildren(key).compact(), nil
}

// MarshalRevocation returns the revocation element, compact, exactly as XmlKeyManager writes it:
// RevokeKey for one key, RevokeAllKeys (with its comment and key id "*") when r.All. The date is
// written in UTC; an empty reason is written "<reason />".
func MarshalRevocation(r Revocation) ([]byte, error) {
	if !r.All && r.KeyID.IsZero() {
		return nil, fmt.Errorf("%w: revocation names no key", ErrMalformedRevocation)
	}
	rev := xel("revocation", []xml.Attr{xattr("version", "1")},
		xel("revocationDate", nil, xtext(FormatXMLDate(r.Date))))
	if r.All {
		rev.children = append(rev.children,
			xcomment(" All keys created before the revocation date are revoked. "),
			xel("key", []xml.Attr{xattr("id", "*")}))
	} else {
		rev.children = append(rev.children, xel("key", []xml.Attr{xattr("id", r.KeyID.String())}))
	}
	rev.children = append(rev.children, xel("reason", nil, xtext(r.Reason)))
	return withChildren(rev).compact(), nil
}
