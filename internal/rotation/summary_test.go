package rotation_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/keyring"
)

// TestSummaryJSON pins the JSON that the server's rotate endpoint and "rotate --json" share:
// the new key or the current default key, the revoked ids (an empty list, not null) and no key
// material.
func TestSummaryJSON(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	mk := func(s string) *keyring.Key {
		id, err := keyring.ParseKeyID(s)
		if err != nil {
			t.Fatal(err)
		}
		return &keyring.Key{ID: id, Activation: t0, Expiration: t0.Add(90 * 24 * time.Hour),
			Descriptor: &keyring.Descriptor{MasterKey: keyring.NewSecret([]byte("secret-master-key"))}}
	}
	cur, next := mk("3d6d01fd-c0e7-44ae-82dd-013b996b4093"), mk("11111111-2222-3333-4444-555555555555")
	for _, tc := range []struct {
		name string
		res  rotation.Result
		want string
	}{
		{"not due", rotation.Result{Decision: keyring.Decision{Current: cur, Reason: "why"}, NextDue: t0, Version: 7},
			`{"result":"not due","key_id":"3d6d01fd-c0e7-44ae-82dd-013b996b4093","activation":"2026-12-01T00:00:00Z","expiration":"2027-03-01T00:00:00Z","next_due":"2026-12-01T00:00:00Z","revoked":[],"version":7,"message":"why"}`},
		{"empty ring", rotation.Result{Version: 0},
			`{"result":"not due","revoked":[],"version":0,"message":""}`},
		{"created, previous revoked", rotation.Result{Created: true, Key: next, Revoked: []keyring.KeyID{cur.ID},
			Decision: keyring.Decision{Current: cur, Reason: "emergency"}, Version: 9},
			`{"result":"created","key_id":"11111111-2222-3333-4444-555555555555","activation":"2026-12-01T00:00:00Z","expiration":"2027-03-01T00:00:00Z","revoked":["3d6d01fd-c0e7-44ae-82dd-013b996b4093"],"version":9,"message":"emergency"}`},
	} {
		b, err := json.Marshal(tc.res.Summary())
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
}
