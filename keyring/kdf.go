package keyring

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"hash"
	"sync"
)

// DeriveKey derives n bytes from the key-derivation key kdk with NIST SP800-108 in counter mode,
// HMAC-SHA512 as the PRF, exactly as ASP.NET Core's ManagedSP800_108_CTR_HMACSHA512 does:
//
//	block_i = HMAC-SHA512(kdk, BE32(i) || label || 0x00 || contextHeader || context || BE32(n*8))
//
// for i = 1, 2, …, truncated to n bytes. In payload encryption the label is the additional
// authenticated data ([AAD]), the context header comes from [ContextHeader] and the context is
// the payload's 16-byte key modifier. It returns an empty slice if n <= 0. It panics if n is
// [MaxDerivedKeySize] or more, since the length in bits must fit the 32-bit field (.NET throws).
func DeriveKey(kdk, label, contextHeader, context []byte, n int) []byte {
	if n <= 0 {
		return []byte{}
	}
	if n >= MaxDerivedKeySize {
		panic("keyring: DeriveKey output length too large")
	}
	out := make([]byte, n)
	deriveKeyInto(out, kdk, label, contextHeader, context)
	return out
}

// MaxDerivedKeySize bounds the output of [DeriveKey]: the length in bits is a 32-bit field.
const MaxDerivedKeySize = 1 << 29

// kdfSeparator is the single zero byte between the label and the context.
var kdfSeparator = []byte{0}

// deriveKeyInto fills dst with len(dst) bytes of SP800-108 output (see [DeriveKey]).
func deriveKeyInto(dst, kdk, label, contextHeader, context []byte) {
	h := hmac.New(sha512.New, kdk)
	deriveKeyWith(h, dst, label, contextHeader, context)
}

// keyedKDF derives keys from one key-derivation key with HMAC-SHA512 instances kept in a pool.
// A pooled instance has been reset once, which makes crypto/hmac save its state after the
// key's inner and outer pads (FIPS 198-1 §6 allows precomputing them): each later derivation
// restores that state instead of hashing the pads again, and allocates nothing. The saved
// states are as secret as the key; they live as long as the ring that owns the pool.
type keyedKDF struct {
	kdk  []byte
	pool sync.Pool // of hash.Hash, keyed with kdk and reset
}

// deriveKeyFor is deriveKeyInto with kdf's pooled HMAC when kdf is not nil.
func deriveKeyFor(kdf *keyedKDF, dst, kdk, label, contextHeader, context []byte) {
	if kdf == nil {
		deriveKeyInto(dst, kdk, label, contextHeader, context)
		return
	}
	h, ok := kdf.pool.Get().(hash.Hash)
	if !ok {
		h = hmac.New(sha512.New, kdf.kdk)
	}
	deriveKeyWith(h, dst, label, contextHeader, context)
	h.Reset()
	kdf.pool.Put(h)
}

// deriveKeyWith is deriveKeyInto with a fresh (or reset) HMAC-SHA512 keyed with the kdk.
func deriveKeyWith(h hash.Hash, dst, label, contextHeader, context []byte) {
	// buf holds the counter (bytes 0–3), the length in bits (4–7) and one HMAC output (8–).
	var buf [8 + sha512.Size]byte
	binary.BigEndian.PutUint32(buf[4:8], uint32(len(dst))*8)
	for i := uint32(1); len(dst) > 0; i++ {
		if i > 1 {
			h.Reset()
		}
		binary.BigEndian.PutUint32(buf[0:4], i)
		h.Write(buf[0:4])
		h.Write(label)
		h.Write(kdfSeparator)
		h.Write(contextHeader)
		h.Write(context)
		h.Write(buf[4:8])
		dst = dst[copy(dst, h.Sum(buf[8:8])):]
	}
	clear(buf[8:])
}
