package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"software.sslmate.com/src/go-pkcs12"
)

// mustCertificate returns a self-signed RSA certificate and its key.
func mustCertificate(tb testing.TB) (*x509.Certificate, *rsa.PrivateKey) {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "dpkeyring test"},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     t0.Add(365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert, key
}

func mustWriteFile(tb testing.TB, path string, data []byte) string {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestCertificateProtectedRing reads a ring written by ProtectKeysWithCertificate: without the
// certificate the key is listed but cannot be used; with it (PEM, or PKCS#12 and a password
// file) it lists with its algorithm and unprotects.
func TestCertificateProtectedRing(t *testing.T) {
	cert, key := mustCertificate(t)
	dir := t.TempDir()
	k := mustKey(t, idCurrent, t0.Add(-time.Hour), t0.Add(-time.Hour), t0.Add(90*24*time.Hour), 7)
	el, err := keyring.MarshalKey(k)
	if err != nil {
		t.Fatal(err)
	}
	encrypted, err := keyring.EncryptKeyWithCertificate(el, cert)
	if err != nil {
		t.Fatal(err)
	}
	mustWriteElement(t, dir, "key-"+idCurrent, encrypted)
	payload := mustProtect(t, mustRing(t, k), idCurrent, "certificate-protected", "", "P")

	files := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := mustWriteFile(t, filepath.Join(files, "cert.pem"), append(
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...))
	pfx, err := pkcs12.Modern.Encode(key, cert, nil, "s3cret pass")
	if err != nil {
		t.Fatal(err)
	}
	pfxFile := mustWriteFile(t, filepath.Join(files, "cert.pfx"), pfx)
	passwordFile := mustWriteFile(t, filepath.Join(files, "password"), []byte("s3cret pass\n"))
	wrongPassword := mustWriteFile(t, filepath.Join(files, "wrong"), []byte("nope\n"))

	t.Run("without certificate", func(t *testing.T) {
		r := runCLI(t, t0, "", "keys", "list", "--keys", dir)
		if r.code != exitOK || !regexp.MustCompile(`\?\s+certificate`).MatchString(r.stdout) || !strings.Contains(r.stdout, "No default key") {
			t.Errorf("exit %d, stdout:\n%s", r.code, r.stdout)
		}
		r = runCLI(t, t0, "", "unprotect", "--keys", dir, "--purpose", "P", payload)
		if r.code != exitFailure || !strings.Contains(r.stderr, "cannot decrypt with key "+idCurrent) {
			t.Errorf("unprotect without --cert: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"PEM", []string{"--cert", pemFile}},
		{"PKCS#12 with password file", []string{"--cert", pfxFile, "--cert-password-file", passwordFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, t0, "", append([]string{"keys", "list", "--keys", dir}, tc.args...)...)
			if r.code != exitOK || !regexp.MustCompile(`\*\s+`+idCurrent+`\s+active .*AES_256_CBC\+HMACSHA256\s+certificate`).MatchString(r.stdout) {
				t.Errorf("keys list: exit %d, stderr %q, stdout:\n%s", r.code, r.stderr, r.stdout)
			}
			r = runCLI(t, t0, "", append([]string{"unprotect", "--keys", dir, "--purpose", "P", payload}, tc.args...)...)
			if r.code != exitOK || r.stdout != "certificate-protected" {
				t.Errorf("unprotect: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		r := runCLI(t, t0, "", "keys", "list", "--keys", dir, "--cert", pfxFile, "--cert-password-file", wrongPassword)
		if r.code != exitFailure || !strings.Contains(r.stderr, "wrong password") || strings.Contains(r.stderr, "nope") {
			t.Errorf("exit %d, stderr %q; want 1, a wrong-password message without the password", r.code, r.stderr)
		}
	})
	t.Run("missing certificate file", func(t *testing.T) {
		r := runCLI(t, t0, "", "keys", "list", "--keys", dir, "--cert", filepath.Join(files, "missing.pem"))
		if r.code != exitFailure || !strings.Contains(r.stderr, "missing.pem") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// TestCertificateFixtures opens testdata/keyxml/cert-protected.xml (one element file) with each
// file of testdata/certs.
func TestCertificateFixtures(t *testing.T) {
	const keyFile = "../../testdata/keyxml/cert-protected.xml"
	const id = "2e5ace63-8fc8-4c97-9d0b-cb0860ee515d"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"pfx", []string{"--cert", "../../testdata/certs/test-only.pfx", "--cert-password-file", "../../testdata/certs/test-only.password"}},
		{"legacy pfx", []string{"--cert", "../../testdata/certs/test-only-legacy.pfx", "--cert-password-file", "../../testdata/certs/test-only.password"}},
		{"pem", []string{"--cert", "../../testdata/certs/test-only.pem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, t0, "", append([]string{"keys", "list", "--keys", keyFile, "--json"}, tc.args...)...)
			if r.code != exitOK {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, `"id": "`+id+`"`) || !strings.Contains(r.stdout, `"protection": "certificate"`) ||
				!strings.Contains(r.stdout, `"encryption": "AES_256_CBC"`) || strings.Contains(r.stdout, `"error"`) {
				t.Errorf("key %s not opened:\n%s", id, r.stdout)
			}
		})
	}
	// The certificate alone (no private key) cannot open it.
	r := runCLI(t, t0, "", "keys", "list", "--keys", keyFile, "--json", "--cert", "../../testdata/certs/test-only.crt")
	if r.code != exitOK || !strings.Contains(r.stdout, `"error"`) {
		t.Errorf("with the certificate only: exit %d, stdout:\n%s", r.code, r.stdout)
	}
}
