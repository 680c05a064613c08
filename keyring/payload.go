package keyring

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"
)

// Sizes of the encryptor payload parts (ManagedAuthenticatedEncryptor, AesGcmAuthenticatedEncryptor).
const (
	keyModifierSize = 16
	cbcIVSize       = aes.BlockSize
	gcmNonceSize    = 12
	gcmTagSize      = 16
)

// algorithm is everything the encryptor needs for one (encryption, validation) combination,
// computed once.
type algorithm struct {
	gcm     bool
	keyLen  int              // AES key length in bytes
	macLen  int              // HMAC key and digest length in bytes (CBC only)
	newHash func() hash.Hash // HMAC hash (CBC only)
	header  []byte           // context header; never modified
}

type algorithmEntry struct {
	once sync.Once
	alg  *algorithm
	err  error
}

// algorithms caches one entry per combination; GCM ignores the validation algorithm and uses
// column ValidationUnknown.
var algorithms [len(encryptionNames)][len(validationNames)]algorithmEntry

// lookupAlgorithm returns the cached algorithm for enc and val, computing its context header on
// first use. It returns an error wrapping [ErrUnsupportedAlgorithm] for an unknown combination.
func lookupAlgorithm(enc EncryptionAlgorithm, val ValidationAlgorithm) (*algorithm, error) {
	if enc <= EncryptionUnknown || int(enc) >= len(encryptionNames) {
		return nil, fmt.Errorf("%w: encryption %s", ErrUnsupportedAlgorithm, enc)
	}
	if enc.IsGCM() {
		val = ValidationUnknown
	} else if val <= ValidationUnknown || int(val) >= len(validationNames) {
		return nil, fmt.Errorf("%w: validation %s with %s", ErrUnsupportedAlgorithm, val, enc)
	}
	e := &algorithms[enc][val]
	e.once.Do(func() { e.alg, e.err = newAlgorithm(enc, val) })
	return e.alg, e.err
}

func newAlgorithm(enc EncryptionAlgorithm, val ValidationAlgorithm) (*algorithm, error) {
	a := &algorithm{gcm: enc.IsGCM(), keyLen: enc.KeySize()}
	if a.gcm {
		// 00 01 || BE32(keyLen) || BE32(nonce 12) || BE32(tag 16) || BE32(tag 16) ||
		// GCM tag of "" under K0 = KDF("", "", "", "", keyLen) with an all-zero nonce.
		h := make([]byte, 0, 2+16+gcmTagSize)
		h = append(h, 0, 1)
		for _, v := range []int{a.keyLen, gcmNonceSize, gcmTagSize, gcmTagSize} {
			h = binary.BigEndian.AppendUint32(h, uint32(v))
		}
		aead, err := newGCM(DeriveKey(nil, nil, nil, nil, a.keyLen))
		if err != nil {
			return nil, err
		}
		a.header = aead.Seal(h, make([]byte, gcmNonceSize), nil, nil)
		return a, nil
	}
	switch val {
	case HMACSHA1:
		a.newHash = sha1.New
	case HMACSHA256:
		a.newHash = sha256.New
	case HMACSHA384:
		a.newHash = sha512.New384
	case HMACSHA512:
		a.newHash = sha512.New
	}
	a.macLen = val.DigestSize()
	// 00 00 || BE32(keyLen) || BE32(block 16) || BE32(macKeyLen) || BE32(digestLen) ||
	// AES-CBC(K_E0, zero IV, one PKCS#7 pad block) || HMAC(K_H0, "")
	// with K_E0 || K_H0 = KDF("", "", "", "", keyLen + macLen).
	h := make([]byte, 0, 2+16+aes.BlockSize+a.macLen)
	h = append(h, 0, 0)
	for _, v := range []int{a.keyLen, aes.BlockSize, a.macLen, a.macLen} {
		h = binary.BigEndian.AppendUint32(h, uint32(v))
	}
	k := DeriveKey(nil, nil, nil, nil, a.keyLen+a.macLen)
	block, err := aes.NewCipher(k[:a.keyLen])
	if err != nil {
		return nil, err
	}
	pad := bytes.Repeat([]byte{aes.BlockSize}, aes.BlockSize)
	cipher.NewCBCEncrypter(block, make([]byte, aes.BlockSize)).CryptBlocks(pad, pad)
	h = append(h, pad...)
	mac := hmac.New(a.newHash, k[a.keyLen:])
	a.header = mac.Sum(h)
	return a, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ContextHeader returns the context header ASP.NET Core mixes into every key derivation for the
// algorithm combination: for CBC the key, block and digest sizes followed by an encryption and a
// MAC of the empty string under keys derived from an empty KDK; for GCM the sizes and a GCM tag.
// The validation algorithm is ignored for GCM. Headers are computed once per combination; the
// result is a copy. It returns an error wrapping [ErrUnsupportedAlgorithm] for an unknown
// combination.
func ContextHeader(enc EncryptionAlgorithm, val ValidationAlgorithm) ([]byte, error) {
	a, err := lookupAlgorithm(enc, val)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(a.header), nil
}

// sealedSize returns the length of the encryptor payload for a plaintext of n bytes.
func (a *algorithm) sealedSize(n int) int {
	if a.gcm {
		return keyModifierSize + gcmNonceSize + n + gcmTagSize
	}
	return keyModifierSize + cbcIVSize + (n/aes.BlockSize+1)*aes.BlockSize + a.macLen
}

// ivSize returns the IV (CBC) or nonce (GCM) size.
func (a *algorithm) ivSize() int {
	if a.gcm {
		return gcmNonceSize
	}
	return cbcIVSize
}

func (d *Descriptor) algorithm() (*algorithm, error) {
	if d == nil {
		return nil, fmt.Errorf("%w: nil descriptor", ErrUnsupportedAlgorithm)
	}
	return lookupAlgorithm(d.Encryption, d.Validation)
}

// Encrypt returns the encryptor payload of plaintext under the descriptor's master key with aad
// as the key-derivation label, as ASP.NET Core's authenticated encryptors write it:
//
//	CBC: keyModifier[16] || IV[16] || AES-CBC(PKCS#7(plaintext)) || HMAC(IV || ciphertext)
//	GCM: keyModifier[16] || nonce[12] || ciphertext || tag[16]
//
// The key modifier and then the IV or nonce are fresh random bytes from crypto/rand. The AAD
// (see [AAD]) is only the KDF label; GCM gets no associated data. It returns an error wrapping
// [ErrUnsupportedAlgorithm] if the descriptor names an unknown algorithm.
func (d *Descriptor) Encrypt(plaintext, aad []byte) ([]byte, error) {
	return d.appendEncrypt(nil, nil, plaintext, aad)
}

// appendEncrypt appends the encryptor payload to dst with a fresh key modifier and IV, deriving
// keys with kdf (the ring's pool for the descriptor's key) if it is not nil.
func (d *Descriptor) appendEncrypt(kdf *keyedKDF, dst, plaintext, aad []byte) ([]byte, error) {
	a, err := d.algorithm()
	if err != nil {
		return nil, err
	}
	var random [keyModifierSize + cbcIVSize]byte
	r := random[:keyModifierSize+a.ivSize()]
	if _, err := rand.Read(r); err != nil {
		return nil, fmt.Errorf("keyring: reading random bytes: %w", err)
	}
	return d.appendEncryptWith(kdf, dst, a, plaintext, aad, r[:keyModifierSize], r[keyModifierSize:])
}

// encryptDeterministic is Encrypt with a given key modifier and IV (or nonce), for known-answer
// tests.
func (d *Descriptor) encryptDeterministic(plaintext, aad, keyModifier, iv []byte) ([]byte, error) {
	a, err := d.algorithm()
	if err != nil {
		return nil, err
	}
	if len(keyModifier) != keyModifierSize || len(iv) != a.ivSize() {
		return nil, fmt.Errorf("keyring: key modifier must be %d bytes and IV %d bytes", keyModifierSize, a.ivSize())
	}
	return d.appendEncryptWith(nil, nil, a, plaintext, aad, keyModifier, iv)
}

func (d *Descriptor) appendEncryptWith(kdf *keyedKDF, dst []byte, a *algorithm, plaintext, aad, keyModifier, iv []byte) ([]byte, error) {
	n := len(dst)
	size := a.sealedSize(len(plaintext))
	if cap(dst)-n < size {
		grown := make([]byte, n, n+size)
		copy(grown, dst)
		dst = grown
	}
	out := dst[:n+size]
	p := out[n:]
	copy(p, keyModifier)
	copy(p[keyModifierSize:], iv)
	kdk := d.MasterKey.Bytes()

	if a.gcm {
		key := make([]byte, a.keyLen)
		deriveKeyFor(kdf, key, kdk, aad, a.header, keyModifier)
		aead, err := newGCM(key)
		clear(key)
		if err != nil {
			return nil, err
		}
		body := p[keyModifierSize+gcmNonceSize:]
		aead.Seal(body[:0], p[keyModifierSize:keyModifierSize+gcmNonceSize], plaintext, nil)
		return out, nil
	}

	keys := make([]byte, a.keyLen+a.macLen)
	defer clear(keys)
	deriveKeyFor(kdf, keys, kdk, aad, a.header, keyModifier)
	block, err := aes.NewCipher(keys[:a.keyLen])
	if err != nil {
		return nil, err
	}
	ctEnd := len(p) - a.macLen
	ct := p[keyModifierSize+cbcIVSize : ctEnd]
	copy(ct, plaintext)
	padLen := len(ct) - len(plaintext)
	for i := len(plaintext); i < len(ct); i++ {
		ct[i] = byte(padLen)
	}
	cipher.NewCBCEncrypter(block, p[keyModifierSize:keyModifierSize+cbcIVSize]).CryptBlocks(ct, ct)
	mac := hmac.New(a.newHash, keys[a.keyLen:])
	mac.Write(p[keyModifierSize:ctEnd])
	mac.Sum(p[ctEnd:ctEnd])
	return out, nil
}

// Decrypt authenticates and decrypts an encryptor payload written by [Descriptor.Encrypt] (or by
// ASP.NET Core) with aad as the key-derivation label. For CBC the MAC is checked in constant time
// before anything is decrypted. Every failure to authenticate or decrypt (wrong key, wrong AAD,
// tampering, truncation, bad padding) returns exactly [ErrDecryptionFailed]. It returns an error
// wrapping [ErrUnsupportedAlgorithm] if the descriptor names an unknown algorithm.
func (d *Descriptor) Decrypt(encryptorPayload, aad []byte) ([]byte, error) {
	return d.decrypt(nil, encryptorPayload, aad, false)
}

// cbcScratch holds the derived AES and HMAC keys (at most 32 + 64 bytes) and then the computed
// MAC (at most 64 bytes) of one CBC decryption; it is cleared before going back to the pool.
type cbcScratch [32 + 2*sha512.Size]byte

var cbcScratchPool = sync.Pool{New: func() any { return new(cbcScratch) }}

// decrypt is [Descriptor.Decrypt], deriving keys with kdf (the ring's pool for the descriptor's
// key) if it is not nil. With inPlace, a CBC payload is decrypted over its own
// ciphertext once the MAC has been checked (a failed MAC leaves p unchanged) and the plaintext
// returned is a subslice of p; the caller must own p. GCM always decrypts into a new buffer, since
// a failed GCM open may overwrite its destination.
func (d *Descriptor) decrypt(kdf *keyedKDF, p, aad []byte, inPlace bool) ([]byte, error) {
	a, err := d.algorithm()
	if err != nil {
		return nil, err
	}
	kdk := d.MasterKey.Bytes()

	if a.gcm {
		if len(p) < keyModifierSize+gcmNonceSize+gcmTagSize {
			return nil, ErrDecryptionFailed
		}
		key := make([]byte, a.keyLen)
		deriveKeyFor(kdf, key, kdk, aad, a.header, p[:keyModifierSize])
		aead, err := newGCM(key)
		clear(key)
		if err != nil {
			return nil, ErrDecryptionFailed
		}
		body := p[keyModifierSize+gcmNonceSize:]
		out, err := aead.Open(make([]byte, 0, len(body)-gcmTagSize), p[keyModifierSize:keyModifierSize+gcmNonceSize], body, nil)
		if err != nil {
			return nil, ErrDecryptionFailed
		}
		return out, nil
	}

	if len(p) < keyModifierSize+cbcIVSize+a.macLen {
		return nil, ErrDecryptionFailed
	}
	ctEnd := len(p) - a.macLen
	ct := p[keyModifierSize+cbcIVSize : ctEnd]
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, ErrDecryptionFailed
	}
	scratch := cbcScratchPool.Get().(*cbcScratch)
	defer func() {
		clear(scratch[:])
		cbcScratchPool.Put(scratch)
	}()
	keys := scratch[:a.keyLen+a.macLen]
	deriveKeyFor(kdf, keys, kdk, aad, a.header, p[:keyModifierSize])

	mac := hmac.New(a.newHash, keys[a.keyLen:])
	mac.Write(p[keyModifierSize:ctEnd])
	if !hmac.Equal(mac.Sum(scratch[len(keys):len(keys)]), p[ctEnd:]) {
		return nil, ErrDecryptionFailed
	}

	block, err := aes.NewCipher(keys[:a.keyLen])
	if err != nil {
		return nil, ErrDecryptionFailed
	}
	out := ct
	if !inPlace {
		out = make([]byte, len(ct))
	}
	cipher.NewCBCDecrypter(block, p[keyModifierSize:keyModifierSize+cbcIVSize]).CryptBlocks(out, ct)
	padLen := int(out[len(out)-1])
	if padLen == 0 || padLen > aes.BlockSize {
		return nil, ErrDecryptionFailed
	}
	for _, b := range out[len(out)-padLen:] {
		if int(b) != padLen {
			return nil, ErrDecryptionFailed
		}
	}
	return out[:len(out)-padLen], nil
}

// PayloadKeyID returns the key id in a protected payload's header. It returns an error wrapping
// [ErrMalformedPayload] if the payload is shorter than the 20-byte header or does not start with
// the magic header 09 F0 C9 F0, and one wrapping [ErrNewerPayloadVersion] if the magic header
// names a format version other than 0.
func PayloadKeyID(payload []byte) (KeyID, error) {
	if len(payload) < headerSize {
		return KeyID{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrMalformedPayload, len(payload), headerSize)
	}
	magic := binary.BigEndian.Uint32(payload)
	if magic&^0xF != magicHeader {
		return KeyID{}, fmt.Errorf("%w: bad magic header", ErrMalformedPayload)
	}
	if v := magic & 0xF; v != 0 {
		return KeyID{}, fmt.Errorf("%w: version %d", ErrNewerPayloadVersion, v)
	}
	return KeyIDFromDotNetBytes(payload[4:headerSize]), nil
}

// ProtectWithKey protects plaintext with key k for the purpose chain purposes (see [Purposes])
// and returns the full payload ASP.NET Core's Unprotect accepts:
// magic header || k.ID (.NET Guid byte order) || encryptor payload (see [Descriptor.Encrypt]).
// It does not check whether k is revoked or active. It returns an error wrapping
// k.DescriptorErr if k has no usable descriptor, and one wrapping [ErrInvalidPurpose] for a
// purpose that is not valid UTF-8.
func ProtectWithKey(k Key, plaintext []byte, purposes []string) ([]byte, error) {
	return protectWithKey(k, nil, plaintext, purposes)
}

// protectWithKey is [ProtectWithKey], deriving keys with kdf if it is not nil.
func protectWithKey(k Key, kdf *keyedKDF, plaintext []byte, purposes []string) ([]byte, error) {
	if k.Descriptor == nil {
		return nil, unusableKeyError(k)
	}
	a, err := k.Descriptor.algorithm()
	if err != nil {
		return nil, fmt.Errorf("keyring: key %s: %w", k.ID, err)
	}
	aad, err := AAD(k.ID, purposes)
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerSize, headerSize+a.sealedSize(len(plaintext)))
	copy(out, aad[:headerSize]) // the AAD starts with the same magic header and key id
	return k.Descriptor.appendEncrypt(kdf, out, plaintext, aad)
}

// unusableKeyError explains why a key without a descriptor cannot be used.
func unusableKeyError(k Key) error {
	if k.DescriptorErr != nil {
		return fmt.Errorf("keyring: key %s cannot be used: %w", k.ID, k.DescriptorErr)
	}
	return fmt.Errorf("%w: key %s has no descriptor", ErrMalformedKey, k.ID)
}

// Unprotect decrypts a protected payload with the ring's key named in its header, for the
// purpose chain purposes (see [Purposes]), as ASP.NET Core's IDataProtector.Unprotect does.
// Expired keys still decrypt. It returns the plaintext and the key used. Errors:
//   - [ErrMalformedPayload] or [ErrNewerPayloadVersion] for a bad header (see [PayloadKeyID]);
//   - a [*KeyNotFoundError] if the ring does not hold the key;
//   - an error wrapping [ErrKeyRevoked] if the key is revoked;
//   - an error wrapping the key's DescriptorErr if its descriptor could not be read;
//   - [ErrDecryptionFailed] if the payload does not authenticate (wrong purposes or
//     application name, wrong key material, tampering).
//
// Whenever the key was found, it is returned with the error too, so callers can report it.
func (r *Ring) Unprotect(payload []byte, purposes []string) ([]byte, Key, error) {
	id, err := PayloadKeyID(payload)
	if err != nil {
		return nil, Key{}, err
	}
	if r == nil {
		return nil, Key{}, &KeyNotFoundError{ID: id}
	}
	k, kdf, err := r.lookup(id)
	if err != nil {
		return nil, Key{}, err
	}
	if r.IsRevoked(k) {
		return nil, k, fmt.Errorf("%w: key %s", ErrKeyRevoked, id)
	}
	if k.Descriptor == nil {
		return nil, k, unusableKeyError(k)
	}
	aad, err := AAD(id, purposes)
	if err != nil {
		return nil, k, err
	}
	plaintext, err := k.Descriptor.decrypt(kdf, payload[headerSize:], aad, false)
	if err != nil {
		return nil, k, err
	}
	return plaintext, k, nil
}
