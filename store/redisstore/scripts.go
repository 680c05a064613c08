package redisstore

import "github.com/redis/go-redis/v9"

// The write scripts. Each runs atomically on the master holding the ring's slot; all keys of a
// ring share one hash slot (see ringKeys). Scripts return arrays of strings: a status word,
// then values. Redis replicates their effects, so a WAIT after a script covers its writes.

// appendScript appends one element, create-only and idempotent by name.
//
// KEYS: list, version, names, token
// ARGV: fence ("0" = none), name, sha256 hex of the compact XML, compact XML, checked length,
// present ("1" when the client found the same element already in the list under that name),
// then name/sha pairs to backfill into names (foreign elements the client named).
//
// Replies:
//
//	{"fenced", currentToken}
//	{"exists"}                the name holds other bytes
//	{"same", version}         the name holds these bytes already (nothing appended)
//	{"check", listLength}     the list has elements not in names; the client must name them
//	                          and call again with checked length = listLength
//	{"ok", version}           appended
//
// "same" rewrites the names entry unchanged: that write makes the WAIT that follows also
// cover the earlier write of the element, so a retried Append confirms durability.
var appendScript = redis.NewScript(`
local fence = ARGV[1]
if fence ~= '0' then
  local tok = redis.call('GET', KEYS[4])
  if tok ~= fence then return {'fenced', tok or '0'} end
end
local n = redis.call('LLEN', KEYS[1])
local ver = tonumber(redis.call('GET', KEYS[2]) or '0')
local have = redis.call('HGET', KEYS[3], ARGV[2])
if have then
  if have ~= ARGV[3] then return {'exists'} end
  redis.call('HSET', KEYS[3], ARGV[2], have)
  return {'same', tostring(ver + n)}
end
if tonumber(ARGV[5]) ~= n and redis.call('HLEN', KEYS[3]) ~= n then
  return {'check', tostring(n)}
end
for i = 7, #ARGV, 2 do
  redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1])
end
if ARGV[6] == '1' then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  return {'same', tostring(ver + n)}
end
redis.call('RPUSH', KEYS[1], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
ver = redis.call('INCR', KEYS[2])
return {'ok', tostring(ver + n + 1)}
`)

// lockScript grants or renews a lease. The lease key holds "token|owner" and expires by
// itself (PX); the token counter never expires and only grows.
//
// KEYS: lease, token
// ARGV: owner, ttl in milliseconds
//
// Replies: {"granted", token}, {"renewed", token}, {"locked", owner, pttl}.
var lockScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, '|', 1, true)
  local tok = string.sub(cur, 1, sep - 1)
  local owner = string.sub(cur, sep + 1)
  if owner == ARGV[1] then
    redis.call('SET', KEYS[1], cur, 'PX', ARGV[2])
    return {'renewed', tok}
  end
  return {'locked', owner, tostring(redis.call('PTTL', KEYS[1]))}
end
local tok = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], tok .. '|' .. ARGV[1], 'PX', ARGV[2])
return {'granted', tostring(tok)}
`)

// unlockScript releases a lease if its token is still the current one.
//
// KEYS: lease, token
// ARGV: token
//
// Replies: {"ok"}, {"fenced", currentToken}.
var unlockScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[2])
if cur ~= ARGV[1] then return {'fenced', cur or '0'} end
local l = redis.call('GET', KEYS[1])
if l then
  local sep = string.find(l, '|', 1, true)
  if string.sub(l, 1, sep - 1) == ARGV[1] then redis.call('DEL', KEYS[1]) end
end
return {'ok'}
`)

// putMetaScript replaces the metadata record if its version is the expected one.
//
// KEYS: meta, token
// ARGV: fence ("0" = none), data, expected version
//
// Replies: {"ok", version}, {"conflict", currentVersion}, {"fenced", currentToken}.
var putMetaScript = redis.NewScript(`
local fence = ARGV[1]
if fence ~= '0' then
  local tok = redis.call('GET', KEYS[2])
  if tok ~= fence then return {'fenced', tok or '0'} end
end
local cur = redis.call('HGET', KEYS[1], 'version') or '0'
if cur ~= ARGV[3] then return {'conflict', cur} end
local nxt = tostring(tonumber(cur) + 1)
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'version', nxt)
return {'ok', nxt}
`)
