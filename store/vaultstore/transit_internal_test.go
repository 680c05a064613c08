package vaultstore

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClearInfo(t *testing.T) {
	tests := []struct {
		xml  string
		want map[string]any
	}{
		{`<key id="3d6d01fd-c0e7-44ae-82dd-013b996b4093" version="1"><creationDate>2026-01-02T03:04:05Z</creationDate><activationDate>a</activationDate><expirationDate>e</expirationDate><descriptor><masterKey><value>SECRET</value></masterKey></descriptor></key>`,
			map[string]any{"kind": "key", "id": "3d6d01fd-c0e7-44ae-82dd-013b996b4093", "creationDate": "2026-01-02T03:04:05Z", "activationDate": "a", "expirationDate": "e"}},
		{`<revocation version="1"><revocationDate>r</revocationDate><key id="*" /><reason>x</reason></revocation>`,
			map[string]any{"kind": "revocation", "id": "*", "revocationDate": "r"}},
		{`<key><descriptor><creationDate>nested, not taken</creationDate></descriptor></key>`, map[string]any{"kind": "key"}},
		{`not xml`, map[string]any{}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, clearInfo([]byte(tc.xml))); diff != "" {
			t.Errorf("clearInfo(%s) (-want +got):\n%s", tc.xml, diff)
		}
	}
}

func TestKeyVersion(t *testing.T) {
	for in, want := range map[string]string{"vault:v12:abc": "vault:v12", "vault:v1:": "vault:v1", "junk": "junk"} {
		if got := keyVersion(in); got != want {
			t.Errorf("keyVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzClearInfo checks that clearInfo never panics and never copies anything but the listed
// fields.
func FuzzClearInfo(f *testing.F) {
	f.Add([]byte(`<key id="x"><creationDate>d</creationDate><descriptor><value>SECRET</value></descriptor></key>`))
	f.Add([]byte(`<revocation><key id="*"/></revocation>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for k := range clearInfo(b) {
			switch k {
			case "kind", "id", "creationDate", "activationDate", "expirationDate", "revocationDate":
			default:
				t.Errorf("unexpected field %q", k)
			}
		}
	})
}
