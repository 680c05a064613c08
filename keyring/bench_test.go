package keyring_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
)

const benchApp = "/var/www/umbraco/"

// benchCookie returns a ring and the cookie value of the Umbraco-like ticket (about 1.6 KB of
// ticket, 2.3 KB of cookie text), protected with AES-256-CBC + HMACSHA256.
func benchCookie(b *testing.B) (*keyring.Ring, string) {
	b.Helper()
	ring, _ := mustRing(b, 1, keyCreated)
	value, err := ring.EncryptCookie(umbracoIssued, umbracoTicket(umbracoIssued), benchApp, keyring.UmbracoScheme)
	if err != nil {
		b.Fatal(err)
	}
	return ring, value
}

// BenchmarkUnprotectCookie decrypts the Umbraco-like cookie end to end, as DecryptCookie does it:
// base64url decode, header and key lookup, key derivation, MAC check, AES-CBC decrypt, ticket
// decoding.
func BenchmarkUnprotectCookie(b *testing.B) {
	ring, value := benchCookie(b)
	opts := keyring.CookieOptions{Scheme: keyring.UmbracoScheme, AppNames: []string{benchApp}}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.DecryptCookie(value, umbracoIssued, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// rawInput is the payload of the benchmark cookie split into its parts, with the AAD and context
// header computed once, as a .NET node caches them per protector and algorithm.
type rawInput struct {
	kdk, aad, header, keyModifier, iv, ct, tag []byte
}

func newRawInput(b *testing.B, ring *keyring.Ring, value string) rawInput {
	b.Helper()
	payload, err := keyring.Base64URLDecode(value)
	if err != nil {
		b.Fatal(err)
	}
	id, err := keyring.PayloadKeyID(payload)
	if err != nil {
		b.Fatal(err)
	}
	k, err := ring.Key(id)
	if err != nil {
		b.Fatal(err)
	}
	aad, err := keyring.AAD(id, keyring.Purposes(benchApp, keyring.CookiePurposes(keyring.UmbracoScheme)...))
	if err != nil {
		b.Fatal(err)
	}
	header, err := keyring.ContextHeader(keyring.AES256CBC, keyring.HMACSHA256)
	if err != nil {
		b.Fatal(err)
	}
	body := payload[20:]
	return rawInput{
		kdk: k.Descriptor.MasterKey.Bytes(), aad: aad, header: header,
		keyModifier: body[:16], iv: body[16:32], ct: body[32 : len(body)-32], tag: body[len(body)-32:],
	}
}

// rawDecrypt is the cryptography alone, written directly against crypto/hmac, crypto/aes and
// crypto/cipher: the SP800-108 HMAC-SHA512 derivation of the 64 bytes of AES and HMAC keys, the
// HMAC-SHA256 check and the AES-256-CBC decryption with the padding check.
func rawDecrypt(b *testing.B, in rawInput) []byte {
	// K_E || K_H = first 64 bytes of
	// HMAC-SHA512(kdk, BE32(1) || label || 0 || header || keyModifier || BE32(512)).
	kdf := hmac.New(sha512.New, in.kdk)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], 1)
	kdf.Write(n[:])
	kdf.Write(in.aad)
	kdf.Write([]byte{0})
	kdf.Write(in.header)
	kdf.Write(in.keyModifier)
	binary.BigEndian.PutUint32(n[:], 512)
	kdf.Write(n[:])
	keys := kdf.Sum(nil)

	mac := hmac.New(sha256.New, keys[32:])
	mac.Write(in.iv)
	mac.Write(in.ct)
	if !hmac.Equal(mac.Sum(nil), in.tag) {
		b.Fatal("MAC mismatch")
	}
	block, err := aes.NewCipher(keys[:32])
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, len(in.ct))
	cipher.NewCBCDecrypter(block, in.iv).CryptBlocks(out, in.ct)
	pad := int(out[len(out)-1])
	if pad < 1 || pad > 16 {
		b.Fatal("bad padding")
	}
	return out[:len(out)-pad]
}

// BenchmarkRawPrimitives does only the cryptography of BenchmarkUnprotectCookie on the same
// payload (see rawDecrypt).
func BenchmarkRawPrimitives(b *testing.B) {
	ring, value := benchCookie(b)
	in := newRawInput(b, ring, value)
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		rawDecrypt(b, in)
	}
}

// BenchmarkCookieOverRaw alternates, iteration by iteration, the end-to-end decryption of
// BenchmarkUnprotectCookie, the raw cryptography of BenchmarkRawPrimitives and the parts of the
// end-to-end path (Ring.Unprotect, base64url decoding, ticket decoding), and reports each one's
// total time over the raw time: "x-raw" for the end-to-end path, then "unprotect-x-raw",
// "base64-x-raw" and "ticket-x-raw". Alternating makes the ratios robust to the load of a shared
// machine, which skews benchmarks run one after the other.
//
// On a heavily loaded machine a few iterations are preempted for milliseconds, which the totals
// above absorb unevenly. The benchmark therefore also reports the same ratios between the median
// times of one iteration of each path: "x-raw-med", "unprotect-x-raw-med", "base64-x-raw-med",
// "ticket-x-raw-med". Medians leave out those preemptions, but also the rare iterations that pay
// for a garbage-collector assist, so they favour the paths that allocate more a little.
func BenchmarkCookieOverRaw(b *testing.B) {
	ring, value := benchCookie(b)
	in := newRawInput(b, ring, value)
	opts := keyring.CookieOptions{Scheme: keyring.UmbracoScheme, AppNames: []string{benchApp}}
	purposes := keyring.Purposes(benchApp, keyring.CookiePurposes(keyring.UmbracoScheme)...)
	var cookie, raw, unprotect, base64, ticket time.Duration
	// Per-iteration times of each path, for the medians.
	var times [5][]time.Duration
	for i := range times {
		times[i] = make([]time.Duration, 0, 1<<16)
	}
	for b.Loop() {
		t0 := time.Now()
		if _, err := ring.DecryptCookie(value, umbracoIssued, opts); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		rawDecrypt(b, in)
		t2 := time.Now()
		payload, err := keyring.Base64URLDecode(value)
		if err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		plaintext, _, err := ring.Unprotect(payload, purposes)
		if err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		if _, err := keyring.ParseTicket(plaintext); err != nil {
			b.Fatal(err)
		}
		t5 := time.Now()
		cookie += t1.Sub(t0)
		raw += t2.Sub(t1)
		base64 += t3.Sub(t2)
		unprotect += t4.Sub(t3)
		ticket += t5.Sub(t4)
		for i, d := range [5]time.Duration{t1.Sub(t0), t2.Sub(t1), t4.Sub(t3), t3.Sub(t2), t5.Sub(t4)} {
			times[i] = append(times[i], d)
		}
	}
	b.ReportMetric(float64(cookie)/float64(raw), "x-raw")
	b.ReportMetric(float64(unprotect)/float64(raw), "unprotect-x-raw")
	b.ReportMetric(float64(base64)/float64(raw), "base64-x-raw")
	b.ReportMetric(float64(ticket)/float64(raw), "ticket-x-raw")
	var med [5]float64
	for i := range times {
		slices.Sort(times[i])
		med[i] = float64(times[i][len(times[i])/2])
	}
	b.ReportMetric(med[0]/med[1], "x-raw-med")
	b.ReportMetric(med[2]/med[1], "unprotect-x-raw-med")
	b.ReportMetric(med[3]/med[1], "base64-x-raw-med")
	b.ReportMetric(med[4]/med[1], "ticket-x-raw-med")
}

// BenchmarkParseTicket decodes the Umbraco-like ticket alone.
func BenchmarkParseTicket(b *testing.B) {
	raw, err := umbracoTicket(umbracoIssued).MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keyring.ParseTicket(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRingUnprotect is Ring.Unprotect alone on the decoded payload of
// BenchmarkUnprotectCookie: the cryptography of BenchmarkRawPrimitives plus the AAD, key lookup
// and revocation check, without base64url and ticket decoding.
func BenchmarkRingUnprotect(b *testing.B) {
	ring, value := benchCookie(b)
	payload, err := keyring.Base64URLDecode(value)
	if err != nil {
		b.Fatal(err)
	}
	purposes := keyring.Purposes(benchApp, keyring.CookiePurposes(keyring.UmbracoScheme)...)
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ring.Unprotect(payload, purposes); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBase64URLDecode is the base64url decoding of the cookie alone.
func BenchmarkBase64URLDecode(b *testing.B) {
	_, value := benchCookie(b)
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keyring.Base64URLDecode(value); err != nil {
			b.Fatal(err)
		}
	}
}
