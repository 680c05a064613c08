// Package e2e holds the end-to-end tests of dpkeyring: they build the real binary once
// (cmd/dpkeyring) and drive "dpkeyring serve", "token" and "rotate" processes over HTTP on
// 127.0.0.1, on the embedded file store and, when available, on real Redis and Vault servers
// (KEYRING_TEST_REDIS_ADDR, KEYRING_TEST_VAULT_ADDR and KEYRING_TEST_VAULT_TOKEN, plus a
// dedicated redis-server and Vault dev server each test starts and kills itself).
//
// The package has no non-test code.
package e2e
