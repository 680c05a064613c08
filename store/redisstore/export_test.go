package redisstore

// CompanionKeys returns the keys the store keeps beside list (for tests).
func CompanionKeys(list string) []string {
	k := keysFor(list)
	return []string{k.version, k.names, k.lease, k.token, k.meta}
}
