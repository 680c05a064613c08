// Package redisstore keeps key rings in Redis exactly where ASP.NET Core's
// PersistKeysToStackExchangeRedis keeps them, so a .NET node configured the usual way reads
// (and may write) the same ring.
//
// # Layout
//
// A ring is a Redis list of elements in compact XML, one element per list entry, appended with
// RPUSH: what RedisXmlRepository stores (element.ToString(SaveOptions.DisableFormatting)) and
// reads back with LRANGE 0 -1. Ring "default" is the list under the key prefix, by default
// "DataProtection-Keys" (the key .NET uses when none is given); ring R is the list
// "<prefix>:R", unless [Config.Keys] gives it a key of its own.
//
// Beside each list L the store keeps companion keys that carry L as hash tag, so a Redis
// Cluster keeps all of a ring in one slot ("{DataProtection-Keys}" hashes exactly like
// "DataProtection-Keys"); a list key with a hash tag of its own is used as the base as is:
//
//	{L}:version  counter of appends made through the store
//	{L}:names    hash: element name -> sha256 (hex) of the element's compact XML
//	{L}:token    highest fencing token granted
//	{L}:lease    "token|owner" of the current lease (the only key with an expiry, SET PX)
//	{L}:meta     hash: data, version (ring metadata)
//
// A ring's version is the append counter plus the list's length, so it also grows when a .NET
// node RPUSHes a key itself. Elements pushed by others are listed too, named with
// keyring.ElementName; an append checks them before writing, so a name is never stored twice.
//
// # Writes
//
// Each write is one Lua script, atomic on the master of the ring's slot: Append checks the
// fence and the name and then does RPUSH, HSET and INCR together; Lock is SET-NX-PX semantics
// plus the token INCR; PutMeta is a compare-and-swap. No script sets an expiry on the list,
// the names, the version, the token or the metadata, and nothing deletes an element.
//
// When the master has replicas, every write is followed, on the same connection and in the
// same round trip, by WAIT for [Config.WaitReplicas] replicas (by default 1 when a replica is
// connected at Open). A write they do not acknowledge in time fails with store.ErrUnavailable,
// so a key acknowledged to the caller survives the master's loss and a Sentinel or Cluster
// failover. Retrying such an Append is safe: it finds its element and waits again.
//
// # Deployment checks
//
// [Store.Check] returns warnings the caller should log loudly: a maxmemory-policy that may
// evict the ring (allkeys-*), persistence turned off, a TTL on a ring key.
package redisstore
