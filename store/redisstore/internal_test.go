package redisstore

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeysFor(t *testing.T) {
	tests := []struct {
		list, version string
	}{
		{"DataProtection-Keys", "{DataProtection-Keys}:version"},
		{"DataProtection-Keys:shop", "{DataProtection-Keys:shop}:version"},
		{"{app}keys", "{app}keys:version"}, // keeps the list's own hash tag
		{"a{}b", "{a{}b}:version"},         // empty tag: Redis hashes the whole key
		{"x{y}z{w}", "x{y}z{w}:version"},   // the first tag counts
		{"{DataProtection-Keys}", "{DataProtection-Keys}:version"},
	}
	for _, tc := range tests {
		if got := keysFor(tc.list).version; got != tc.version {
			t.Errorf("keysFor(%q).version = %q, want %q", tc.list, got, tc.version)
		}
	}
}

func TestNameForeign(t *testing.T) {
	const (
		a  = `<key id="3d6d01fd-c0e7-44ae-82dd-013b996b4093" version="1"><creationDate>2024-01-01T00:00:00Z</creationDate></key>`
		a2 = `<key id="3d6d01fd-c0e7-44ae-82dd-013b996b4093" version="1"><creationDate>2025-01-01T00:00:00Z</creationDate></key>`
		b  = `<key id="a11f35fc-1fed-4bd4-b727-056a63b70932" version="1" />`
		bi = "<key id=\"a11f35fc-1fed-4bd4-b727-056a63b70932\" version=\"1\">\n</key>"
		c  = `<other />`
	)
	nameA, nameB := "key-3d6d01fd-c0e7-44ae-82dd-013b996b4093", "key-a11f35fc-1fed-4bd4-b727-056a63b70932"
	tests := []struct {
		name              string
		raw               []string
		names             map[string]string
		appendName        string
		compact           string
		present, conflict bool
		backfill          []any
	}{
		{
			name: "new element, foreign ones backfilled", raw: []string{a, c},
			appendName: nameB, compact: b,
			backfill: []any{nameA, sha256Hex(a), "unknown-" + sha256Hex(c)[:16], sha256Hex(c)},
		},
		{
			name: "same element already pushed", raw: []string{b}, appendName: nameB, compact: b,
			present: true,
		},
		{
			name: "other bytes under the name", raw: []string{a}, appendName: nameA, compact: a2,
			conflict: true,
		},
		{
			name: "known elements are skipped", raw: []string{a, b}, names: map[string]string{nameA: sha256Hex(a)},
			appendName: "key-new", compact: c, backfill: []any{nameB, sha256Hex(b)},
		},
		{
			name: "two versions of one name are not backfilled", raw: []string{a, a2, b},
			appendName: "key-new", compact: c, backfill: []any{nameB, sha256Hex(b)},
		},
		{
			name: "non-compact foreign element is not backfilled", raw: []string{bi},
			appendName: "key-new", compact: c,
		},
		{
			name: "non-compact foreign element equal after compacting", raw: []string{bi},
			appendName: nameB, compact: b, present: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			present, conflict, backfill := nameForeign(tc.raw, tc.names, tc.appendName, []byte(tc.compact))
			if present != tc.present || conflict != tc.conflict {
				t.Errorf("present, conflict = %v, %v; want %v, %v", present, conflict, tc.present, tc.conflict)
			}
			if diff := cmp.Diff(tc.backfill, backfill); diff != "" {
				t.Errorf("backfill (-want +got):\n%s", diff)
			}
		})
	}
}
