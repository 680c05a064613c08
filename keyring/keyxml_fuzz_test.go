package keyring_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// keyXMLSeeds returns every element file in testdata/keyxml.
func keyXMLSeeds(f *testing.F) [][]byte {
	f.Helper()
	names, err := filepath.Glob(filepath.Join(keyXMLDir, "*.xml"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no seeds in %s: %v", keyXMLDir, err)
	}
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzParseElements feeds elements separated by NUL bytes to ParseElements. It must not panic;
// every key it reads with a writable descriptor must survive MarshalKey + ParseKey, and
// CompactXML must be idempotent on every element.
func FuzzParseElements(f *testing.F) {
	seeds := keyXMLSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add(bytes.Join(seeds, []byte{0}))
	f.Fuzz(func(t *testing.T, data []byte) {
		elements := bytes.Split(data, []byte{0})
		ring, err := keyring.ParseElements(elements, keyring.ParseOptions{})
		for _, e := range elements {
			c, err := keyring.CompactXML(e)
			if err != nil {
				continue
			}
			c2, err := keyring.CompactXML(c)
			if err != nil || !bytes.Equal(c, c2) {
				t.Fatalf("CompactXML not idempotent: %q -> %q (%v)", c, c2, err)
			}
			f, err := keyring.FileXML(c)
			if err != nil {
				t.Fatalf("FileXML(%q): %v", c, err)
			}
			if c3, err := keyring.CompactXML(f); err != nil || !bytes.Equal(c, c3) {
				t.Fatalf("CompactXML(FileXML(x)) = %q, want %q (%v)", c3, c, err)
			}
		}
		if err != nil {
			return
		}
		for _, k := range ring.Keys() {
			if k.Descriptor == nil {
				if k.DescriptorErr == nil {
					t.Fatalf("key %s has neither a descriptor nor an error", k.ID)
				}
				continue
			}
			x, err := keyring.MarshalKey(k)
			if err != nil {
				continue // HMACSHA1/384 keys cannot be written in the default descriptor
			}
			back, err := keyring.ParseKey(x, keyring.ParseOptions{})
			if err != nil || back.Descriptor == nil {
				t.Fatalf("ParseKey(MarshalKey(k)) = %v, %v", err, back.DescriptorErr)
			}
			if back.ID != k.ID || !back.Created.Equal(k.Created.Truncate(100)) && !back.Created.Equal(k.Created) ||
				!bytes.Equal(back.Descriptor.MasterKey.Bytes(), k.Descriptor.MasterKey.Bytes()) ||
				back.Descriptor.Encryption != k.Descriptor.Encryption || back.Descriptor.Validation != k.Descriptor.Validation {
				t.Fatalf("key %s changed in MarshalKey + ParseKey", k.ID)
			}
		}
	})
}

// FuzzParseRepository feeds whole repository documents to ParseRepository. It must not panic,
// and a document that splits must survive MarshalRepository + SplitRepository.
func FuzzParseRepository(f *testing.F) {
	seeds := keyXMLSeeds(f)
	var all []string
	for _, s := range seeds {
		c, err := keyring.CompactXML(s)
		if err != nil {
			f.Fatal(err)
		}
		all = append(all, string(c))
	}
	f.Add([]byte("<repository>" + strings.Join(all, "") + "</repository>"))
	f.Add([]byte("<repository>\n  " + strings.Join(all[:3], "\n  ") + "\n</repository>"))
	f.Add([]byte(`<root xmlns:p="urn:p"><p:key /><revocation><key id="*" /><revocationDate>2014-01-01T00:00:00Z</revocationDate></revocation></root>`))
	f.Add([]byte("<repository />"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = keyring.ParseRepository(data, keyring.ParseOptions{})
		elements, err := keyring.SplitRepository(data)
		if err != nil {
			return
		}
		doc, err := keyring.MarshalRepository(elements)
		if err != nil {
			t.Fatalf("MarshalRepository of split elements: %v", err)
		}
		again, err := keyring.SplitRepository(doc)
		if err != nil {
			t.Fatalf("SplitRepository(MarshalRepository(x)): %v", err)
		}
		if diff := cmp.Diff(elements, again); diff != "" && !(len(elements) == 0 && len(again) == 0) {
			t.Fatalf("repository round trip (-want +got):\n%s", diff)
		}
	})
}
