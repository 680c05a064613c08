package keyring

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var updateKeyXML = flag.Bool("update", false, "rewrite the golden files in testdata/keyxml")

// checkKeyXMLGolden compares got with ../testdata/keyxml/name, or rewrites it with -update.
func checkKeyXMLGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", "keyxml", name)
	if *updateKeyXML {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got: %q\nwant: %q", name, got, want)
	}
}

func TestGoldenKey(t *testing.T) {
	id, err := ParseKeyID("b8f1e3a2-5c4d-4e6f-9a0b-1c2d3e4f5a6b")
	if err != nil {
		t.Fatal(err)
	}
	mk := make([]byte, masterKeySize)
	for i := range mk {
		mk[i] = byte(0xa0 + i)
	}
	created := time.Date(2026, 4, 29, 15, 6, 8, 628510000, time.UTC)
	k, err := newKeyFrom(id, mk, created, created.Add(48*time.Hour), created.Add(90*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	checkKeyXMLGolden(t, "golden-key.xml", k.XML)
	file, err := FileXML(k.XML)
	if err != nil {
		t.Fatal(err)
	}
	checkKeyXMLGolden(t, "golden-key.file.xml", file)

	// The written key reads back as the same key.
	back, err := ParseKey(file, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != k.ID || !back.Created.Equal(k.Created) || !back.Activation.Equal(k.Activation) ||
		!back.Expiration.Equal(k.Expiration) || back.Descriptor == nil ||
		!bytes.Equal(back.Descriptor.MasterKey.Bytes(), mk) || !bytes.Equal(back.XML, k.XML) {
		t.Errorf("round trip: got %+v, want %+v", back, k)
	}

	gcm := k
	gcm.Descriptor = &Descriptor{Encryption: AES256GCM, MasterKey: NewSecret(mk)}
	x, err := MarshalKey(gcm)
	if err != nil {
		t.Fatal(err)
	}
	checkKeyXMLGolden(t, "golden-key-gcm.xml", x)
}

func TestGoldenRevocations(t *testing.T) {
	id, err := ParseKeyID("b8f1e3a2-5c4d-4e6f-9a0b-1c2d3e4f5a6b")
	if err != nil {
		t.Fatal(err)
	}
	date := time.Date(2026, 5, 1, 8, 30, 0, 123456700, time.UTC)
	for _, tc := range []struct {
		name string
		rev  Revocation
	}{
		{"golden-revocation-key", Revocation{Date: date, KeyID: id, Reason: "Key leaked <in> a \"log\" & more."}},
		{"golden-revocation-all", Revocation{Date: date, All: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := MarshalRevocation(tc.rev)
			if err != nil {
				t.Fatal(err)
			}
			checkKeyXMLGolden(t, tc.name+".xml", x)
			file, err := FileXML(x)
			if err != nil {
				t.Fatal(err)
			}
			checkKeyXMLGolden(t, tc.name+".file.xml", file)
			back, err := ParseRevocation(file)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Date.Equal(tc.rev.Date) || back.All != tc.rev.All || back.KeyID != tc.rev.KeyID || back.Reason != tc.rev.Reason {
				t.Errorf("round trip: got %+v, want %+v", back, tc.rev)
			}
		})
	}
}

// TestFileXMLShapes pins the XmlWriter details FileXML and CompactXML reproduce: the byte order
// mark, the declaration on its own line, two-space indentation, mixed content left inline, and
// escaping.
func TestFileXMLShapes(t *testing.T) {
	tests := []struct {
		in, compact, file string
	}{
		{
			in:      "<a>\n  <b />\n  <!-- c -->\n  <d>text</d>\n</a>",
			compact: "<a><b /><!-- c --><d>text</d></a>",
			file:    "\ufeff<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<a>\n  <b />\n  <!-- c -->\n  <d>text</d>\n</a>",
		},
		{
			in:      "<a><b/>mixed<c><d/></c></a>",
			compact: "<a><b />mixed<c><d /></c></a>",
			file:    "\ufeff<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<a>\n  <b />mixed<c><d /></c></a>",
		},
		{
			in:      `<a x="&lt;&amp;&gt;&quot;'&#9;&#10;&#13;">&lt;&amp;&gt;"'</a>`,
			compact: `<a x="&lt;&amp;&gt;&quot;'&#x9;&#xA;&#xD;">&lt;&amp;&gt;"'</a>`,
			file:    "\ufeff<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" + `<a x="&lt;&amp;&gt;&quot;'&#x9;&#xA;&#xD;">&lt;&amp;&gt;"'</a>`,
		},
	}
	for _, tc := range tests {
		c, err := CompactXML([]byte(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if string(c) != tc.compact {
			t.Errorf("CompactXML(%q) = %q, want %q", tc.in, c, tc.compact)
		}
		f, err := FileXML([]byte(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if string(f) != tc.file {
			t.Errorf("FileXML(%q) = %q, want %q", tc.in, f, tc.file)
		}
	}
}

func TestNewKey(t *testing.T) {
	now := time.Date(2026, 11, 24, 4, 0, 0, 123456789, time.UTC)
	k, err := NewKey(now, now, now.Add(90*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if k.Descriptor.MasterKey.Len() != 64 || k.Descriptor.Encryption != AES256CBC || k.Descriptor.Validation != HMACSHA256 {
		t.Errorf("descriptor = %v/%v, %d bytes", k.Descriptor.Encryption, k.Descriptor.Validation, k.Descriptor.MasterKey.Len())
	}
	if k.ID[6]>>4 != 4 || k.DeserializerType != defaultDeserializerAQN {
		t.Errorf("id %s, type %q", k.ID, k.DeserializerType)
	}
	if !k.Created.Equal(now.Truncate(100 * time.Nanosecond)) {
		t.Errorf("Created = %v", k.Created)
	}
	k2, err := NewKey(now, now, now)
	if err != nil {
		t.Fatal(err)
	}
	if k2.ID == k.ID || bytes.Equal(k2.Descriptor.MasterKey.Bytes(), k.Descriptor.MasterKey.Bytes()) {
		t.Error("two new keys share an id or a master key")
	}
	back, err := ParseKey(k.XML, ParseOptions{})
	if err != nil || back.Descriptor == nil || !bytes.Equal(back.Descriptor.MasterKey.Bytes(), k.Descriptor.MasterKey.Bytes()) {
		t.Errorf("ParseKey(NewKey().XML): %v", err)
	}
	name, err := ElementName(k.XML)
	if err != nil || name != "key-"+k.ID.String() {
		t.Errorf("ElementName = %q, %v", name, err)
	}
}

func TestParseXMLDateForms(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2015-03-01T19:13:19.7573854-08:00", time.Date(2015, 3, 2, 3, 13, 19, 757385400, time.UTC)},
		{" 2024-01-01T00:00:00Z\n", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"2024-01-01T00:00:00.5+01:30", time.Date(2023, 12, 31, 22, 30, 0, 500000000, time.UTC)},
		{"9999-12-31T23:59:59.9999999Z", time.Date(9999, 12, 31, 23, 59, 59, 999999900, time.UTC)},
		{"2024-01-01T00:00:00.123456749Z", time.Date(2024, 1, 1, 0, 0, 0, 123456700, time.UTC)},
		{"2024-01-01T00:00:00.12345675Z", time.Date(2024, 1, 1, 0, 0, 0, 123456800, time.UTC)},
		{"2024-01-01T00:00:00", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		got, err := ParseXMLDate(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseXMLDate(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "2024-01-01", "2024-01-01T00:00:00.Z", "01/02/2024 10:00:00", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00+25:00"} {
		if _, err := ParseXMLDate(in); err == nil {
			t.Errorf("ParseXMLDate(%q) succeeded", in)
		}
	}
	if got := FormatXMLDate(time.Date(2015, 3, 2, 3, 13, 19, 757385499, time.FixedZone("x", 3600))); got != "2015-03-02T02:13:19.7573854Z" {
		t.Errorf("FormatXMLDate = %q", got)
	}
}
