// Package server runs "dpkeyring serve": it opens the configured rings' stores, makes sure every
// ring has a key, generates the first tokens, serves the HTTP API (package httpapi) over HTTP or
// TLS, runs the built-in rotation scheduler, writes the audit log, and shuts down gracefully.
//
// [Config] holds the settings ([Load] reads them from a JSON file, DPKEYRING_* environment
// variables and flags); [Run] runs the server until its context ends. docs/operations.md is the
// operator's guide.
package server
