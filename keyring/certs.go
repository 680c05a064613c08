package keyring

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"software.sslmate.com/src/go-pkcs12"
)

// ErrBadCertificate reports certificate or private key input that cannot be read: not PEM or
// PKCS#12, a wrong PKCS#12 password, or blocks that do not parse. Its messages never contain
// the password.
var ErrBadCertificate = errors.New("keyring: cannot read certificate")

// CertificateKey is an X.509 certificate and, when known, its private key: what
// ProtectKeysWithCertificate encrypts master keys to, and what opens them again.
type CertificateKey struct {
	// Certificate is the certificate. It may be nil for a private key given without one, which
	// then matches encrypted keys by public key only.
	Certificate *x509.Certificate
	// PrivateKey is the certificate's private key (an *rsa.PrivateKey), or nil when only the
	// certificate was given (enough to encrypt, not to decrypt).
	PrivateKey crypto.Decrypter
}

// Thumbprint returns the certificate's SHA-1 thumbprint in the upper-case hex .NET shows
// (X509Certificate2.Thumbprint), or "" without a certificate.
func (c CertificateKey) Thumbprint() string {
	if c.Certificate == nil {
		return ""
	}
	return thumbprint(c.Certificate.Raw)
}

func thumbprint(der []byte) string {
	sum := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// ParseCertificates reads certificates and private keys from PEM (CERTIFICATE, PRIVATE KEY and
// RSA PRIVATE KEY blocks, in any order, in one input) or from PKCS#12 (.pfx/.p12, including
// files with modern AES/PBES2 encryption) protected with password. Each private key is paired
// with the certificate whose public key it matches. Errors wrap [ErrBadCertificate] and never
// contain the password.
func ParseCertificates(data, password []byte) ([]CertificateKey, error) {
	if bytes.Contains(data, []byte("-----BEGIN ")) {
		return parsePEMCertificates(data)
	}
	key, leaf, chain, err := pkcs12.DecodeChain(data, string(password))
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return nil, fmt.Errorf("%w: PKCS#12: wrong password", ErrBadCertificate)
		}
		return nil, fmt.Errorf("%w: not PEM, and not PKCS#12: %s", ErrBadCertificate, redact(err.Error(), password))
	}
	dec, err := asDecrypter(key)
	if err != nil {
		return nil, err
	}
	out := []CertificateKey{{Certificate: leaf, PrivateKey: dec}}
	for _, c := range chain {
		out = append(out, CertificateKey{Certificate: c})
	}
	return out, nil
}

// redact removes the password from a message, in case a library ever echoes it.
func redact(msg string, password []byte) string {
	if len(password) == 0 {
		return msg
	}
	return strings.ReplaceAll(msg, string(password), "REDACTED")
}

func parsePEMCertificates(data []byte) ([]CertificateKey, error) {
	var certs []*x509.Certificate
	var keys []crypto.Decrypter
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: CERTIFICATE block: %w", ErrBadCertificate, err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: PRIVATE KEY block: %w", ErrBadCertificate, err)
			}
			dec, err := asDecrypter(k)
			if err != nil {
				return nil, err
			}
			keys = append(keys, dec)
		case "RSA PRIVATE KEY":
			if _, encrypted := b.Headers["DEK-Info"]; encrypted {
				return nil, fmt.Errorf("%w: encrypted RSA PRIVATE KEY blocks are not supported; decrypt the key or use PKCS#12", ErrBadCertificate)
			}
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: RSA PRIVATE KEY block: %w", ErrBadCertificate, err)
			}
			keys = append(keys, k)
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%w: ENCRYPTED PRIVATE KEY blocks are not supported; decrypt the key or use PKCS#12", ErrBadCertificate)
		}
	}
	if len(certs) == 0 && len(keys) == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE or PRIVATE KEY block in PEM input", ErrBadCertificate)
	}
	out := make([]CertificateKey, 0, len(certs)+len(keys))
	used := make([]bool, len(keys))
	for _, c := range certs {
		ck := CertificateKey{Certificate: c}
		for i, k := range keys {
			if !used[i] && samePublicKey(c.PublicKey, k.Public()) {
				ck.PrivateKey, used[i] = k, true
				break
			}
		}
		out = append(out, ck)
	}
	for i, k := range keys {
		if !used[i] {
			out = append(out, CertificateKey{PrivateKey: k})
		}
	}
	return out, nil
}

// asDecrypter accepts the RSA private keys XML Encryption key transport can use.
func asDecrypter(k any) (crypto.Decrypter, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("%w: private key is %T; certificate-protected keys need an RSA key", ErrBadCertificate, k)
}

func samePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && b != nil && e.Equal(b)
}
