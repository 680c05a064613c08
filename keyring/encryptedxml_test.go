package keyring_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
)

func mustNewKeyXML(tb testing.TB) keyring.Key {
	tb.Helper()
	now := time.Date(2026, 11, 24, 4, 0, 0, 0, time.UTC)
	k, err := keyring.NewKey(now, now, now.Add(90*24*time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestEncryptKeyWithCertificateRoundTrip(t *testing.T) {
	c := mustTestCerts(t)
	k := mustNewKeyXML(t)
	enc, err := keyring.EncryptKeyWithCertificate(k.XML, c[0].cert)
	if err != nil {
		t.Fatal(err)
	}
	mkB64 := base64.StdEncoding.EncodeToString(k.Descriptor.MasterKey.Bytes())
	for _, want := range []string{
		`<encryption algorithm="AES_256_CBC" /><validation algorithm="HMACSHA256" /><encryptedSecret decryptorType="Microsoft.AspNetCore.DataProtection.XmlEncryption.EncryptedXmlDecryptor, Microsoft.AspNetCore.DataProtection, Version=10.0.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60" xmlns="http://schemas.asp.net/2015/03/dataProtection">`,
		`<EncryptedData Type="http://www.w3.org/2001/04/xmlenc#Element" xmlns="http://www.w3.org/2001/04/xmlenc#"><EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes256-cbc" /><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><EncryptedKey xmlns="http://www.w3.org/2001/04/xmlenc#"><EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-1_5" /><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>` + base64.StdEncoding.EncodeToString(c[0].cert.Raw) + `</X509Certificate></X509Data></KeyInfo><CipherData><CipherValue>`,
		`</CipherValue></CipherData></EncryptedData></encryptedSecret></descriptor></descriptor></key>`,
	} {
		if !bytes.Contains(enc, []byte(want)) {
			t.Errorf("encrypted key lacks %q", want)
		}
	}
	if bytes.Contains(enc, []byte(mkB64)) || bytes.Contains(enc, []byte("requiresEncryption")) {
		t.Fatal("encrypted key still holds the master key or its marker")
	}

	certs, err := keyring.ParseCertificates([]byte(pemBlock("CERTIFICATE", c[0].cert.Raw)+pemBlock("PRIVATE KEY", mustPKCS8(t, c[0].key))), nil)
	if err != nil {
		t.Fatal(err)
	}
	file, err := keyring.FileXML(enc)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"compact": enc, "file": file} {
		got, err := keyring.ParseKey(in, keyring.ParseOptions{Certificates: certs})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.DescriptorErr != nil || got.Protection != keyring.ProtectionCertificate {
			t.Fatalf("%s: DescriptorErr = %v, Protection = %v", name, got.DescriptorErr, got.Protection)
		}
		if !bytes.Equal(got.Descriptor.MasterKey.Bytes(), k.Descriptor.MasterKey.Bytes()) || got.Descriptor.Encryption != keyring.AES256CBC {
			t.Errorf("%s: decrypted descriptor differs", name)
		}
	}

	// Without the certificate, or with another one, the key loads with a clear error.
	other, err := keyring.ParseCertificates([]byte(pemBlock("CERTIFICATE", c[1].cert.Raw)+pemBlock("PRIVATE KEY", mustPKCS8(t, c[1].key))), nil)
	if err != nil {
		t.Fatal(err)
	}
	thumb := keyring.CertificateKey{Certificate: c[0].cert}.Thumbprint()
	for name, opts := range map[string]keyring.ParseOptions{"none": {}, "other": {Certificates: other}, "cert without key": {Certificates: []keyring.CertificateKey{{Certificate: c[0].cert}}}} {
		got, err := keyring.ParseKey(enc, opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Descriptor != nil || !errors.Is(got.DescriptorErr, keyring.ErrUnsupportedProtection) ||
			!strings.Contains(got.DescriptorErr.Error(), thumb) || !strings.Contains(got.DescriptorErr.Error(), "--cert") {
			t.Errorf("%s: DescriptorErr = %v, want ErrUnsupportedProtection naming %s and --cert", name, got.DescriptorErr, thumb)
		}
	}

	// A key given without its certificate still matches by public key.
	keyOnly := []keyring.CertificateKey{{PrivateKey: c[0].key}}
	if got, err := keyring.ParseKey(enc, keyring.ParseOptions{Certificates: keyOnly}); err != nil || got.Descriptor == nil {
		t.Errorf("key-only match: %v, DescriptorErr %v", err, got.DescriptorErr)
	}
}

// handBuiltEncryptedKey wraps plaintext the way .NET's EncryptedXml does, built here
// independently of EncryptKeyWithCertificate: the session key wrapped with raw RSA PKCS #1 v1.5
// (or OAEP), AES-CBC with ISO 10126 padding (random pad bytes), IV first, indented like a key
// file.
func handBuiltEncryptedKey(tb testing.TB, c testCert, plaintext []byte, keyLen int, oaep bool, id string) []byte {
	tb.Helper()
	session := make([]byte, keyLen)
	iv := make([]byte, aes.BlockSize)
	rand.Read(session)
	rand.Read(iv)
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	padded := append(append([]byte(nil), plaintext...), make([]byte, pad)...)
	rand.Read(padded[len(plaintext):])
	padded[len(padded)-1] = byte(pad)
	block, err := aes.NewCipher(session)
	if err != nil {
		tb.Fatal(err)
	}
	data := append([]byte(nil), iv...)
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	data = append(data, ct...)

	var wrapped []byte
	keyAlg := "rsa-1_5"
	if oaep {
		keyAlg = "rsa-oaep-mgf1p"
		wrapped, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, &c.key.PublicKey, session, nil)
		if err != nil {
			tb.Fatal(err)
		}
	} else {
		wrapped = rawPKCS1v15Encrypt(tb, &c.key.PublicKey, session)
	}
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="utf-8"?>
<key id="%s" version="1">
  <creationDate>2021-06-01T10:00:00.1234567Z</creationDate>
  <activationDate>2021-06-01T10:00:00.1234567Z</activationDate>
  <expirationDate>2021-08-30T10:00:00.1234567Z</expirationDate>
  <descriptor deserializerType="Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel.AuthenticatedEncryptorDescriptorDeserializer, Microsoft.AspNetCore.DataProtection, Version=5.0.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60">
    <descriptor>
      <encryption algorithm="AES_256_CBC" />
      <validation algorithm="HMACSHA256" />
      <encryptedSecret decryptorType="Microsoft.AspNetCore.DataProtection.XmlEncryption.EncryptedXmlDecryptor, Microsoft.AspNetCore.DataProtection, Version=5.0.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60" xmlns="http://schemas.asp.net/2015/03/dataProtection">
        <EncryptedData Type="http://www.w3.org/2001/04/xmlenc#Element" xmlns="http://www.w3.org/2001/04/xmlenc#">
          <EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes%d-cbc" />
          <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#">
            <EncryptedKey xmlns="http://www.w3.org/2001/04/xmlenc#">
              <EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#%s" />
              <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#">
                <X509Data>
                  <X509Certificate>%s</X509Certificate>
                </X509Data>
              </KeyInfo>
              <CipherData>
                <CipherValue>%s</CipherValue>
              </CipherData>
            </EncryptedKey>
          </KeyInfo>
          <CipherData>
            <CipherValue>%s</CipherValue>
          </CipherData>
        </EncryptedData>
      </encryptedSecret>
    </descriptor>
  </descriptor>
</key>`, id, keyLen*8, keyAlg, b64(c.cert.Raw), b64(wrapped), b64(data))
}

// rawPKCS1v15Encrypt is RSAES-PKCS1-v1_5 encryption (RFC 8017 §7.2.1) done by hand, so the test
// does not share code with the package under test.
func rawPKCS1v15Encrypt(tb testing.TB, pub *rsa.PublicKey, msg []byte) []byte {
	tb.Helper()
	k := pub.Size()
	em := make([]byte, k)
	em[1] = 2
	ps := em[2 : k-len(msg)-1]
	for i := range ps {
		for ps[i] == 0 {
			rand.Read(ps[i : i+1])
		}
	}
	copy(em[k-len(msg):], msg)
	m := new(big.Int).SetBytes(em)
	c := m.Exp(m, big.NewInt(int64(pub.E)), pub.N)
	return c.FillBytes(make([]byte, k))
}

func TestDecryptHandBuiltEncryptedXML(t *testing.T) {
	c := mustTestCerts(t)
	mk := seqBytes(7, 64)
	plaintext := fmt.Appendf(nil, `<masterKey d1p1:requiresEncryption="true" xmlns:d1p1="http://schemas.asp.net/2015/03/dataProtection"><!-- Warning: the key below is in an unencrypted form. --><value>%s</value></masterKey>`, base64.StdEncoding.EncodeToString(mk))
	certs := []keyring.CertificateKey{{Certificate: c[1].cert, PrivateKey: c[1].key}, {Certificate: c[0].cert, PrivateKey: c[0].key}}
	for _, tc := range []struct {
		keyLen int
		oaep   bool
	}{{32, false}, {16, false}, {24, false}, {32, true}} {
		t.Run(fmt.Sprintf("aes%d-oaep=%v", tc.keyLen*8, tc.oaep), func(t *testing.T) {
			// Several runs, so that random ISO 10126 pad bytes of every kind occur.
			for range 8 {
				in := handBuiltEncryptedKey(t, c[0], plaintext, tc.keyLen, tc.oaep, "5b0c4a10-2d3e-4f50-8a6b-7c8d9e0f1a2b")
				k, err := keyring.ParseKey(in, keyring.ParseOptions{Certificates: certs})
				if err != nil {
					t.Fatal(err)
				}
				if k.DescriptorErr != nil {
					t.Fatalf("DescriptorErr = %v", k.DescriptorErr)
				}
				if !bytes.Equal(k.Descriptor.MasterKey.Bytes(), mk) {
					t.Fatal("master key differs")
				}
			}
		})
	}
}

func TestDecryptCorruptEncryptedXML(t *testing.T) {
	c := mustTestCerts(t)
	certs := []keyring.CertificateKey{{Certificate: c[0].cert, PrivateKey: c[0].key}}
	good := handBuiltEncryptedKey(t, c[0], []byte(`<masterKey><value>AAAA</value></masterKey>`), 32, false, "5b0c4a10-2d3e-4f50-8a6b-7c8d9e0f1a2b")
	last := bytes.LastIndex(good, []byte("<CipherValue>")) + len("<CipherValue>")
	for name, in := range map[string][]byte{
		"flipped data":        append(append(append([]byte(nil), good[:last]...), 'A', 'A', 'A', 'A'), good[last+4:]...),
		"bad algorithm":       bytes.Replace(good, []byte("#aes256-cbc"), []byte("#tripledes-cbc"), 1),
		"wrong key transport": bytes.Replace(good, []byte("#rsa-1_5"), []byte("#rsa-oaep-mgf1p"), 1),
		"short data":          append(append(append([]byte(nil), good[:last]...), "AAAA"...), good[bytes.Index(good[last:], []byte("<"))+last:]...),
	} {
		t.Run(name, func(t *testing.T) {
			k, err := keyring.ParseKey(in, keyring.ParseOptions{Certificates: certs})
			if err != nil {
				t.Fatal(err)
			}
			if k.Descriptor != nil || k.DescriptorErr == nil {
				t.Fatalf("corrupt secret opened: %v", k.DescriptorErr)
			}
		})
	}
}
