package storetest

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// testEpoch is the creation date of the generated keys, so that generated elements are
// deterministic functions of their id.
var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)

// KeyElement returns a key element with the given id, as keyring.MarshalKey writes it (compact
// form), named "key-{id}" as XmlKeyManager names it. The element is a deterministic function of
// id: its master key is derived from the id (test data only, never a real secret).
func KeyElement(tb testing.TB, id keyring.KeyID) store.Element {
	tb.Helper()
	e, err := keyElement(id)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func keyElement(id keyring.KeyID) (store.Element, error) {
	secret := sha512.Sum512([]byte("storetest master key " + id.String()))
	x, err := keyring.MarshalKey(keyring.Key{
		ID:         id,
		Created:    testEpoch,
		Activation: testEpoch,
		Expiration: testEpoch.AddDate(0, 0, 90),
		Descriptor: &keyring.Descriptor{
			Encryption: keyring.AES256CBC,
			Validation: keyring.HMACSHA256,
			MasterKey:  keyring.NewSecret(secret[:]),
		},
	})
	if err != nil {
		return store.Element{}, fmt.Errorf("storetest: marshaling a key: %w", err)
	}
	return newElement(x)
}

// RandomKeyElement returns a new key from keyring.NewKey (random id, random master key).
func RandomKeyElement(tb testing.TB) store.Element {
	tb.Helper()
	k, err := keyring.NewKey(testEpoch, testEpoch, testEpoch.AddDate(0, 0, 90))
	if err != nil {
		tb.Fatal(err)
	}
	e, err := newElement(k.XML)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// DerivedKeyElement returns [KeyElement] for an id derived from label, so that separate
// processes agree on the same elements.
func DerivedKeyElement(tb testing.TB, label string) store.Element {
	tb.Helper()
	e, err := derivedKeyElement(label)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func derivedKeyElement(label string) (store.Element, error) {
	sum := sha256.Sum256([]byte("storetest key id " + label))
	var id keyring.KeyID
	copy(id[:], sum[:16])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return keyElement(id)
}

// RevocationElement returns the revocation of the key with the given id, named
// "revocation-{id}".
func RevocationElement(tb testing.TB, id keyring.KeyID) store.Element {
	tb.Helper()
	raw, err := keyring.MarshalRevocation(keyring.Revocation{Date: testEpoch.AddDate(0, 0, 1), KeyID: id, Reason: "storetest"})
	if err != nil {
		tb.Fatal(err)
	}
	e, err := newElement(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// newElement compacts raw and names it with keyring.ElementName.
func newElement(raw []byte) (store.Element, error) {
	compact, err := keyring.CompactXML(raw)
	if err != nil {
		return store.Element{}, fmt.Errorf("storetest: compacting a generated element: %w", err)
	}
	name, err := keyring.ElementName(compact)
	if err != nil {
		return store.Element{}, fmt.Errorf("storetest: naming a generated element: %w", err)
	}
	return store.Element{Name: name, XML: compact}, nil
}
