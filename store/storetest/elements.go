package storetest

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// keyTemplate is a key element shaped like the ones XmlKeyManager writes with the default
// AuthenticatedEncryptorConfiguration and no key encryptor. The master key is test data derived
// from the id, never a real secret.
const keyTemplate = `<key id="%s" version="1">` +
	`<creationDate>%s</creationDate><activationDate>%s</activationDate><expirationDate>%s</expirationDate>` +
	`<descriptor deserializerType="Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel.AuthenticatedEncryptorDescriptorDeserializer, Microsoft.AspNetCore.DataProtection, Version=8.0.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60">` +
	`<descriptor><encryption algorithm="AES_256_CBC" /><validation algorithm="HMACSHA256" />` +
	`<masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection">` +
	`<!-- Warning: the key below is in an unencrypted form. --><value>%s</value></masterKey>` +
	`</descriptor></descriptor></key>`

// testEpoch is the creation date of the generated keys, so that generated elements are
// deterministic functions of their id.
var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)

// KeyElement returns a key element with the given id in compact form, named "key-{id}" as
// XmlKeyManager names it. The element is a deterministic function of id. Its master key is
// derived from the id: test data only.
func KeyElement(tb testing.TB, id keyring.KeyID) store.Element {
	tb.Helper()
	e, err := keyElement(id)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func keyElement(id keyring.KeyID) (store.Element, error) {
	secret := sha256.Sum256([]byte("storetest master key " + id.String()))
	raw := fmt.Sprintf(keyTemplate, id,
		keyring.FormatXMLDate(testEpoch), keyring.FormatXMLDate(testEpoch),
		keyring.FormatXMLDate(testEpoch.AddDate(0, 0, 90)),
		base64.StdEncoding.EncodeToString(append(secret[:], secret[:]...)))
	return newElement(raw)
}

// RandomKeyElement returns [KeyElement] for a fresh random key id.
func RandomKeyElement(tb testing.TB) store.Element {
	tb.Helper()
	id, err := keyring.NewKeyID()
	if err != nil {
		tb.Fatal(err)
	}
	return KeyElement(tb, id)
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
	raw := fmt.Sprintf(`<revocation version="1"><revocationDate>%s</revocationDate><key id="%s" /><reason>storetest</reason></revocation>`,
		keyring.FormatXMLDate(testEpoch.AddDate(0, 0, 1)), id)
	e, err := newElement(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// newElement compacts raw and names it with keyring.ElementName.
func newElement(raw string) (store.Element, error) {
	compact, err := keyring.CompactXML([]byte(raw))
	if err != nil {
		return store.Element{}, fmt.Errorf("storetest: compacting a generated element: %w", err)
	}
	name, err := keyring.ElementName(compact)
	if err != nil {
		return store.Element{}, fmt.Errorf("storetest: naming a generated element: %w", err)
	}
	return store.Element{Name: name, XML: compact}, nil
}
