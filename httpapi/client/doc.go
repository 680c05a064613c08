// Package client is the Go client of the dpkeyring HTTP API (docs/api.md): it reads a key ring
// from a dpkeyring server, follows it with the ETag long-poll, keeps the last ring it saw on
// disk so a service can start while the server is down, and uses the ring in Go: unprotect
// ASP.NET Core payloads, decrypt ASP.NET Core (and Umbraco) authentication cookies, and make
// gorilla/securecookie codecs that rotate in lockstep with the ring.
//
// # Reading a ring
//
// [New] makes a [Client] for a server URL with a node token ([WithToken] or [WithTokenFile]).
// [Client.Fetch] reads a ring once, conditionally on an ETag (304 answers with the ring already
// held); [Client.Poll] is the same with the server's ?wait= long-poll; [Client.Watch] runs the
// long-poll loop with exponential backoff and jitter and calls back on every new version;
// [Client.Get] reads a ring and falls back to the on-disk cache ([WithCacheDir]) when the server
// is unreachable. Every ring arrives as an immutable [RingDoc]: the elements as served, the
// parsed [keyring.Ring] and the version.
//
// # Using a ring
//
// [RingDoc.Unprotect] and [RingDoc.DecryptCookie] wrap [keyring.Ring.Unprotect] and
// [keyring.Ring.DecryptCookie]. [RingDoc.SecureCookieCodecs] returns one
// [securecookie.Codec] per usable key, the default key's first: encode with
// securecookie.EncodeMulti and decode with securecookie.DecodeMulti, and Go cookies rotate and
// are revoked with the ring.
//
// # securecookie key derivation
//
// Each key's codec uses a hash key (64 bytes, HMAC-SHA256) and a block key (32 bytes,
// AES-256-CTR) derived from the key's 64-byte master key with NIST SP800-108 in counter mode,
// HMAC-SHA512 as the PRF ([keyring.DeriveKey], the KDF of ASP.NET Core's payloads):
//
//	out      = SP800-108-CTR-HMACSHA512(kdk = master key, label = "dpkeyring/securecookie/v1",
//	                                    context = UTF-8 purpose, 96 bytes)
//	hashKey  = out[0:64]
//	blockKey = out[64:96]
//
// [DeriveSecureCookieKeys] computes them, so another implementation can reproduce the codecs.
// A different purpose gives unrelated keys. The master key never leaves the process.
//
// # Secrets
//
// The token is sent only in the Authorization header and never appears in errors. The on-disk
// cache holds key material: its directory is created with mode 0700 and its files with 0600,
// written atomically (temporary file, fsync, rename, directory fsync).
package client
