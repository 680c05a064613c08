// Package vaultstore keeps key rings in HashiCorp Vault's KV version 2 secrets engine, talking
// to Vault only through github.com/hashicorp/vault/api.
//
// # Layout
//
// Under the mount (default "secret") and path prefix (default "dpkeyring"), ring R is:
//
//	<prefix>/rings/R/elements/<name>   one secret per element: {name, seq, xml}
//	<prefix>/rings/R/version           the append counter: its KV version is the last sequence number
//	<prefix>/rings/R/meta              the metadata record: {data (base64)}; Meta.Version is its KV version
//	<prefix>/rings/R/lease             the writer lease: {owner, token, expires}
//
// Element secrets are written with cas=0 (create only), so Vault itself refuses to overwrite a
// key. Append first writes the counter secret (KV v2 serializes writes to one key, so
// each write gets a distinct, growing KV version), then writes the element with that version as
// its sequence number; List sorts by it, so elements come back in append
// order. The ring version is the highest sequence number listed plus the number of element
// secrets: it is computed from the listed elements alone (so a List is consistent without
// reading the counter), it changes whenever an element appears (also one written by someone
// else, without a sequence number), and it never goes back, since elements are never deleted.
// A crash between the counter bump and the element write leaves an unused sequence number and
// no element: nothing changed, and neither did the version.
//
// Element contents are cached per Store: an element never changes once written (Rewrap changes
// only its ciphertext), so after the first List a List costs one LIST request.
//
// The lease is replaced with check-and-set on its KV version, so two writers can never both take
// it. Its token (the fence) grows by one with every new lease and is never reset. Vault has no
// transactions: a fenced Append checks the token just before its create-only write.
//
// # Transit at rest
//
// With a Transit key (transit=KEY in the spec), an element secret holds no XML in the clear:
// {name, seq, ciphertext ("vault:vN:..."), kind, id, creationDate, activationDate,
// expirationDate | revocationDate}. List decrypts with one batch request and returns exactly
// the appended bytes. [Store.NewMasterKey] generates 512-bit master keys with Transit's data-key
// endpoint, and [Store.Rewrap] moves a ring's elements to the newest Transit key version after
// a rotation.
//
// # Policy
//
// A token needs, on <mount>/data/<prefix>/rings/*: create, read, update; on
// <mount>/metadata/<prefix>/rings/*: list (and read). With Transit: update on
// transit/encrypt/KEY, transit/decrypt/KEY, transit/datakey/plaintext/KEY and
// transit/rewrap/KEY. Permission errors wrap store.ErrPermission and name the path and the
// capability.
package vaultstore
