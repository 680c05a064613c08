package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made at test time.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func mustCA(tb testing.TB, name string) *testCA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by ca, for 127.0.0.1 (server) or a client.
func (ca *testCA) issue(tb testing.TB, serial int64, client bool) (certPEM, keyPEM []byte) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

func mustWrite(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// servedSerial connects with a fresh connection and returns the server certificate's serial.
func servedSerial(tb testing.TB, addr string, roots *x509.CertPool) int64 {
	tb.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		tb.Fatalf("TLS dial: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func TestServeTLSReload(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, "test CA")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c, k := ca.issue(t, 100, false)
	mustWrite(t, certFile, c)
	mustWrite(t, keyFile, k)

	s := startServe(t, filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(s.url, "https://") {
		t.Fatalf("url %q, want https", s.url)
	}
	addr := strings.TrimPrefix(s.url, "https://")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	if got := servedSerial(t, addr, roots); got != 100 {
		t.Fatalf("serial %d, want 100", got)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	if code, _ := do(t, client, "GET", s.url+"/v1/rings/default/keys", s.tokens["node"], ""); code != 200 {
		t.Errorf("GET over TLS: %d", code)
	}

	// Renewal: new files (a later mtime) are served on new connections, no restart.
	c, k = ca.issue(t, 200, false)
	mustWrite(t, certFile, c)
	mustWrite(t, keyFile, k)
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(certFile, later, later)
	os.Chtimes(keyFile, later, later)
	waitFor(t, 5*time.Second, func() bool { return servedSerial(t, addr, roots) == 200 })

	// A broken pair keeps the last good certificate and logs the failure.
	mustWrite(t, keyFile, []byte("not a key"))
	later = later.Add(2 * time.Second)
	os.Chtimes(keyFile, later, later)
	time.Sleep(1100 * time.Millisecond)
	if got := servedSerial(t, addr, roots); got != 200 {
		t.Errorf("after a broken key: serial %d, want the previous 200", got)
	}
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(s.stderr.String(), "tls certificate reload failed") })

	// rotate talks TLS with --tls-ca.
	caFile := filepath.Join(dir, "ca.pem")
	mustWrite(t, caFile, ca.pem)
	r := runCLI(t, time.Now(), "", "rotate", "--server", s.url, "--token-file", writeTokenFile(t, s.tokens["admin"]), "--tls-ca", caFile)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "not due") {
		t.Errorf("rotate over TLS: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestServeClientCertificates(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA, otherCA := mustCA(t, "server CA"), mustCA(t, "client CA"), mustCA(t, "other CA")
	certFile, keyFile, clientCAFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "clients.pem")
	c, k := serverCA.issue(t, 1, false)
	mustWrite(t, certFile, c)
	mustWrite(t, keyFile, k)
	mustWrite(t, clientCAFile, clientCA.pem)
	s := startServe(t, filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile, "--client-ca", clientCAFile)

	roots := x509.NewCertPool()
	roots.AddCert(serverCA.cert)
	clientWith := func(ca *testCA) *http.Client {
		tc := &tls.Config{RootCAs: roots}
		if ca != nil {
			cp, kp := ca.issue(t, 7, true)
			cert, err := tls.X509KeyPair(cp, kp)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	if code, _ := do(t, clientWith(clientCA), "GET", s.url+"/healthz", "", ""); code != 200 {
		t.Errorf("with a client certificate: %d", code)
	}
	for name, cl := range map[string]*http.Client{"none": clientWith(nil), "other CA": clientWith(otherCA)} {
		req, _ := http.NewRequest("GET", s.url+"/healthz", nil)
		if resp, err := cl.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("client certificate %s: request succeeded (%d), want a TLS failure", name, resp.StatusCode)
		}
	}
}
