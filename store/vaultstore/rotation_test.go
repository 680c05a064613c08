package vaultstore_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store/vaultstore"
)

var _ rotation.MasterKeySource = (*vaultstore.Store)(nil)

// TestRotationTransit runs a real rotation against the store with Transit: rotation finds
// NewMasterKey, the key's master key comes from Transit, Vault holds only ciphertext, and the
// ring read back through List parses to the same master key.
func TestRotationTransit(t *testing.T) {
	cfg := testConfig(t)
	cfg.TransitKey = transitKey(t)
	s := mustOpen(t, cfg)
	r := &rotation.Rotator{Store: s, Ring: "r", Policy: keyring.DefaultPolicy(), Owner: "test"}
	res, err := r.Rotate(t.Context(), rotation.Request{Immediate: true, Reason: "test"})
	if err != nil || !res.Created {
		t.Fatalf("Rotate = %+v, %v", res, err)
	}
	master := res.Key.Descriptor.MasterKey.Bytes()
	if len(master) != 64 {
		t.Fatalf("master key of %d bytes, want 64", len(master))
	}
	snap := mustList(t, s, "r")
	var elems [][]byte
	for _, e := range snap.Elements {
		elems = append(elems, e.XML)
	}
	ring, err := keyring.ParseElements(elems, keyring.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := ring.Key(res.Key.ID)
	if err != nil || !bytes.Equal(k.Descriptor.MasterKey.Bytes(), master) {
		t.Errorf("key read back: %v, master key equal = %v", err, err == nil && bytes.Equal(k.Descriptor.MasterKey.Bytes(), master))
	}
	raw, _ := json.Marshal(rawElement(t, rootClient(t), cfg, "r", "key-"+res.Key.ID.String()))
	if strings.Contains(string(raw), base64.StdEncoding.EncodeToString(master)) {
		t.Errorf("Vault holds the master key in the clear: %s", raw)
	}
}
