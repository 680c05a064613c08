package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves a certificate and key from files and reloads them when either file's
// modification time or size changes (checked at most once a second, on handshakes). A pair
// that fails to load keeps the previous one in service and is logged.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time
	checkEvery        time.Duration

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     [2]fileInfo
	lastCheck time.Time
}

type fileInfo struct {
	modTime time.Time
	size    int64
}

func statPair(certFile, keyFile string) ([2]fileInfo, error) {
	var out [2]fileInfo
	for i, f := range []string{certFile, keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return out, err
		}
		out[i] = fileInfo{fi.ModTime(), fi.Size()}
	}
	return out, nil
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now, checkEvery: time.Second}
	if err := r.load(); err != nil {
		return nil, err
	}
	r.lastCheck = r.now()
	return r, nil
}

// load reads the pair if its files changed. r.mu must be held (or r unshared).
func (r *certReloader) load() error {
	st, err := statPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("server: tls: %w", err)
	}
	if r.cert != nil && st == r.stamp {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("server: tls: loading %s and %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &cert, st
	return nil
}

// GetCertificate is the tls.Config hook.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.lastCheck) >= r.checkEvery || now.Before(r.lastCheck) {
		r.lastCheck = now
		old := r.cert
		if err := r.load(); err != nil {
			r.log.Error("tls certificate reload failed; keeping the previous certificate", "error", err.Error())
		} else if r.cert != old {
			leaf := r.cert.Leaf
			attrs := []any{"cert", r.certFile}
			if leaf != nil {
				attrs = append(attrs, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
			}
			r.log.Info("tls certificate reloaded", attrs...)
		}
	}
	return r.cert, nil
}

// tlsConfig returns the TLS configuration, or nil when TLS is off.
func (s *server) tlsConfig() (*tls.Config, error) {
	if s.cfg.TLSCert == "" {
		return nil, nil
	}
	r, err := newCertReloader(s.cfg.TLSCert, s.cfg.TLSKey, s.log)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
	if s.cfg.ClientCA != "" {
		pem, err := os.ReadFile(s.cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("server: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("server: client CA: no PEM certificate in " + s.cfg.ClientCA)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}
