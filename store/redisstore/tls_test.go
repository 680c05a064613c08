package redisstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/redisstore"
)

// TestTLS starts its own TLS-only redis-server (the Debian build has TLS) with a certificate
// from a fresh test CA, and opens rediss:// specs against it.
func TestTLS(t *testing.T) {
	requireEnv(t, envAddr) // the real servers, hence redis-server, are there
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	dir := t.TempDir()
	ca, caKey := mustCA(t, dir)
	mustServerCert(t, dir, ca, caKey)
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(bin, "--port", "0", "--tls-port", port, "--bind", "127.0.0.1",
		"--tls-cert-file", filepath.Join(dir, "server.pem"), "--tls-key-file", filepath.Join(dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(dir, "ca.pem"), "--tls-auth-clients", "no",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + port
	waitFor(t, "the TLS server", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})

	caFile := filepath.Join(dir, "ca.pem")
	tests := []struct {
		name    string
		query   string
		wantErr error
		inErr   string
	}{
		{"CA file", "tls_ca_file=" + caFile, nil, ""},
		{"CA file and server name", "tls_ca_file=" + caFile + "&tls_server_name=redis.test", nil, ""},
		{"insecure", "tls_insecure_skip_verify=true", nil, ""},
		{"system roots only", "", store.ErrUnavailable, "certificate"},
		{"wrong server name", "tls_ca_file=" + caFile + "&tls_server_name=other.test", store.ErrUnavailable, "certificate"},
		{"CA file without PEM", "tls_ca_file=" + filepath.Join(dir, "junk.pem"), store.ErrInvalidSpec, "no PEM"},
		{"plain redis to a TLS port", "", store.ErrUnavailable, addr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scheme := "rediss"
			if strings.HasPrefix(tc.name, "plain") {
				scheme = "redis"
			}
			u, err := url.Parse(scheme + "://" + addr + "?wait_timeout=1s&dial_timeout=2s&" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := redisstore.ParseURL(u, func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := redisstore.Open(ctx, cfg)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.inErr) {
					t.Errorf("Open error = %v, want %v mentioning %q", err, tc.wantErr, tc.inErr)
				}
				if s != nil {
					_ = s.Close()
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer func() { _ = s.Close() }()
			name, xml := keyElement(t)
			if _, err := s.Append(ctx, "tls", store.Element{Name: name, XML: []byte(xml)}, 0); err != nil {
				t.Fatalf("Append over TLS: %v", err)
			}
			if snap, err := s.List(ctx, "tls"); err != nil || len(snap.Elements) == 0 {
				t.Errorf("List over TLS = %d elements, %v", len(snap.Elements), err)
			}
		})
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func mustCA(t *testing.T, dir string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dpkeyring test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", der)
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func mustServerCert(t *testing.T, dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"redis.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "server.pem"), "CERTIFICATE", der)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "server.key"), "EC PRIVATE KEY", kder)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(fmt.Errorf("writing %s: %w", path, err))
	}
}
