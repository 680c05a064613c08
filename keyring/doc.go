// Package keyring implements the ASP.NET Core Data Protection formats, byte for byte, with no I/O.
//
// It reads and writes the key ring XML that ASP.NET Core's XmlKeyManager stores (key and
// revocation elements, the authenticated-encryptor descriptors, the encryptedSecret wrappers),
// decides key status, the default key and when a new key is due exactly as current ASP.NET Core
// does, and protects and unprotects payloads (the CfDJ8… format) with the SP800-108 key
// derivation, AES-CBC + HMAC and AES-GCM. It also reassembles chunked cookies and decodes the
// authentication tickets written by ASP.NET Core's TicketSerializer, including the Umbraco
// backoffice cookie.
//
// # Compatibility
//
// Every format here is checked against known-answer vectors taken from ASP.NET Core's own tests
// and documentation (see testdata/README.md at the repository root). Where the reference notes
// and the ASP.NET Core source disagree, the source wins.
//
// # Secrets
//
// Key material is held in [Secret], which redacts itself in logs and in fmt output. Errors never
// contain key material, plaintext or cookie values.
//
// # Time and randomness
//
// Functions that depend on the current time take it as a parameter (now). Randomness comes only
// from crypto/rand.
package keyring
