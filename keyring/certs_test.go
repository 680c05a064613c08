package keyring_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// testCert is a throw-away self-signed RSA certificate made at test time (test-only).
type testCert struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

var (
	testCertsOnce sync.Once
	testCerts     [2]testCert
)

// mustTestCerts returns two distinct RSA certificates with their keys, made once per test run.
func mustTestCerts(tb testing.TB) [2]testCert {
	tb.Helper()
	testCertsOnce.Do(func() {
		for i := range testCerts {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(int64(i + 1)),
				Subject:      pkix.Name{CommonName: "dpkeyring test-only data protection certificate"},
				NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
				NotAfter:     time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
				KeyUsage:     x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				panic(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				panic(err)
			}
			testCerts[i] = testCert{cert: cert, key: key}
		}
	})
	return testCerts
}

func pemBlock(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func mustPKCS8(tb testing.TB, key any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func TestParseCertificatesPEM(t *testing.T) {
	c := mustTestCerts(t)
	tests := []struct {
		name      string
		in        string
		wantCerts int  // entries with a certificate
		wantPairs int  // entries with certificate and key
		keyOnly   bool // one entry with a key and no certificate
	}{
		{"cert then PKCS#8 key", pemBlock("CERTIFICATE", c[0].cert.Raw) + pemBlock("PRIVATE KEY", mustPKCS8(t, c[0].key)), 1, 1, false},
		{"PKCS#1 key then cert", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(c[0].key)) + pemBlock("CERTIFICATE", c[0].cert.Raw), 1, 1, false},
		{"two certs, one key", pemBlock("CERTIFICATE", c[0].cert.Raw) + pemBlock("CERTIFICATE", c[1].cert.Raw) + pemBlock("PRIVATE KEY", mustPKCS8(t, c[1].key)), 2, 1, false},
		{"certificate only", pemBlock("CERTIFICATE", c[0].cert.Raw), 1, 0, false},
		{"key only", pemBlock("PRIVATE KEY", mustPKCS8(t, c[0].key)), 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keyring.ParseCertificates([]byte(tc.in), nil)
			if err != nil {
				t.Fatal(err)
			}
			certs, pairs, keyOnly := 0, 0, 0
			for _, ck := range got {
				if ck.Certificate != nil {
					certs++
					if ck.PrivateKey != nil {
						pairs++
						if !ck.PrivateKey.Public().(*rsa.PublicKey).Equal(ck.Certificate.PublicKey) {
							t.Error("private key paired with the wrong certificate")
						}
					}
				} else if ck.PrivateKey != nil {
					keyOnly++
				}
			}
			if certs != tc.wantCerts || pairs != tc.wantPairs || (keyOnly == 1) != tc.keyOnly {
				t.Errorf("got %d certs, %d pairs, %d lone keys", certs, pairs, keyOnly)
			}
		})
	}
}

func TestParseCertificatesPKCS12(t *testing.T) {
	c := mustTestCerts(t)
	const password = "test-only-pfx-password"
	for name, enc := range map[string]*pkcs12.Encoder{
		"modern AES/PBES2": pkcs12.Modern,
		"legacy RC2/3DES":  pkcs12.LegacyRC2,
	} {
		t.Run(name, func(t *testing.T) {
			pfx, err := enc.Encode(c[0].key, c[0].cert, []*x509.Certificate{c[1].cert}, password)
			if err != nil {
				t.Fatal(err)
			}
			got, err := keyring.ParseCertificates(pfx, []byte(password))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || !got[0].Certificate.Equal(c[0].cert) || got[0].PrivateKey == nil || got[1].PrivateKey != nil {
				t.Fatalf("got %+v", got)
			}
			if tp := got[0].Thumbprint(); len(tp) != 40 || strings.ToUpper(tp) != tp {
				t.Errorf("Thumbprint = %q", tp)
			}
			_, err = keyring.ParseCertificates(pfx, []byte("wrong-"+password))
			if !errors.Is(err, keyring.ErrBadCertificate) || strings.Contains(err.Error(), password) {
				t.Errorf("wrong password: error = %v", err)
			}
		})
	}
}

func TestParseCertificatesErrors(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{
		"empty":          "",
		"garbage":        "not a certificate at all",
		"bad PEM cert":   pemBlock("CERTIFICATE", []byte{1, 2, 3}),
		"EC key":         pemBlock("PRIVATE KEY", mustPKCS8(t, ec)),
		"encrypted PEM":  pemBlock("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}),
		"only other PEM": pemBlock("PUBLIC KEY", []byte{1, 2, 3}),
	} {
		t.Run(name, func(t *testing.T) {
			secret := "s3cret-password"
			_, err := keyring.ParseCertificates([]byte(in), []byte(secret))
			if !errors.Is(err, keyring.ErrBadCertificate) {
				t.Fatalf("error = %v, want ErrBadCertificate", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

// TestCommittedCertificateVector opens ../testdata/keyxml/cert-protected.xml with each form of
// the committed test-only certificate (../testdata/certs/README.md).
func TestCommittedCertificateVector(t *testing.T) {
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "testdata", "certs", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	password := bytes.TrimSpace(read("test-only.password"))
	wantKey, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(read("cert-protected.masterkey.b64"))))
	if err != nil {
		t.Fatal(err)
	}
	element := mustReadKeyXML(t, "cert-protected.xml")
	for _, name := range []string{"test-only.pfx", "test-only-legacy.pfx", "test-only.pem"} {
		t.Run(name, func(t *testing.T) {
			certs, err := keyring.ParseCertificates(read(name), password)
			if err != nil {
				t.Fatal(err)
			}
			k, err := keyring.ParseKey(element, keyring.ParseOptions{Certificates: certs})
			if err != nil {
				t.Fatal(err)
			}
			if k.DescriptorErr != nil || k.Protection != keyring.ProtectionCertificate {
				t.Fatalf("DescriptorErr = %v, Protection = %v", k.DescriptorErr, k.Protection)
			}
			if k.ID.String() != "2e5ace63-8fc8-4c97-9d0b-cb0860ee515d" || !bytes.Equal(k.Descriptor.MasterKey.Bytes(), wantKey) {
				t.Errorf("key %s: master key differs", k.ID)
			}
		})
	}
	certOnly, err := keyring.ParseCertificates(read("test-only.crt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyring.ParseKey(element, keyring.ParseOptions{Certificates: certOnly})
	if err != nil || !errors.Is(k.DescriptorErr, keyring.ErrUnsupportedProtection) {
		t.Errorf("certificate without key: %v, DescriptorErr = %v", err, k.DescriptorErr)
	}
}
