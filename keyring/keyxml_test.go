package keyring_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// keyXMLDir holds the hand-written key and revocation elements (see its README.md).
const keyXMLDir = "../testdata/keyxml"

func mustReadKeyXML(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(keyXMLDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustKeyIDXML(tb testing.TB, s string) keyring.KeyID {
	tb.Helper()
	id, err := keyring.ParseKeyID(s)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func mustTimeXML(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := keyring.ParseXMLDate(s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// seqBytes returns n bytes counting up from start: the master keys of the testdata files.
func seqBytes(start, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(start + i)
	}
	return b
}

func TestParseKeyShapes(t *testing.T) {
	mk64 := seqBytes(0, 64)
	mk32 := seqBytes(100, 32)
	tests := []struct {
		file       string
		id         string
		created    string
		expiration string
		enc        keyring.EncryptionAlgorithm
		val        keyring.ValidationAlgorithm
		masterKey  []byte
		protection keyring.Protection
		descErr    error // DescriptorErr sentinel, or nil
	}{
		{"v1-prerelease-names.xml", "80732141-ec8f-4b80-af9c-c4d2d1ff8901", "2015-03-02T03:13:19.7573854Z", "2015-05-31T03:13:19.7573854Z", keyring.AES256CBC, keyring.HMACSHA256, mk64, keyring.ProtectionNone, nil},
		{"v2-file-form.xml", "3d6d01fd-c0e7-44ae-82dd-013b996b4093", "2019-12-23T19:22:56.6421802Z", "2020-03-22T19:22:56.6421802Z", keyring.AES256CBC, keyring.HMACSHA256, mk64, keyring.ProtectionNone, nil},
		{"v8-compact.xml", "a11f35fc-1fed-4bd4-b727-056a63b70932", "2026-04-29T15:06:08.62851Z", "2026-07-28T15:06:08.62851Z", keyring.AES256CBC, keyring.HMACSHA256, mk64, keyring.ProtectionNone, nil},
		{"no-version-far-future.xml", "5e0f7e6c-1a57-4b9e-9e0e-6b3c1f2a9d10", "2014-01-01T00:00:00Z", "9999-12-31T23:59:59.9999999Z", keyring.AES128CBC, keyring.HMACSHA512, mk64, keyring.ProtectionNone, nil},
		{"gcm.xml", "0b8e5d0e-2c1f-4f55-8d43-0f0a0c2c5d11", "2024-01-01T00:00:00Z", "2024-03-31T00:00:00Z", keyring.AES192GCM, keyring.ValidationUnknown, mk64, keyring.ProtectionNone, nil},
		{"enum-integers.xml", "1c3a9c6e-7d1b-4f7e-a1b2-3c4d5e6f7a8b", "2024-01-01T00:00:00.1Z", "2024-03-31T00:00:00.123Z", keyring.AES256CBC, keyring.HMACSHA512, mk64, keyring.ProtectionNone, nil},
		{"managed-hmacsha384.xml", "6f1e0f6b-8a8a-4d3e-9b7c-1d2e3f405162", "2024-01-01T00:00:00Z", "2024-03-31T00:00:00Z", keyring.AES192CBC, keyring.HMACSHA384, mk32, keyring.ProtectionNone, nil},
		{"managed-aqn-hmacsha1.xml", "7a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d", "2024-01-01T00:00:00Z", "2024-03-31T00:00:00Z", keyring.AES256CBC, keyring.HMACSHA1, mk32, keyring.ProtectionNone, nil},
		{"cng-cbc.xml", "8b3c4d5e-6f70-4b1c-9d2e-3f405a6b7c8d", "2024-01-01T00:00:00Z", "2024-03-31T00:00:00Z", keyring.AES256CBC, keyring.HMACSHA512, mk64, keyring.ProtectionNone, nil},
		{"cng-gcm.xml", "9c4d5e6f-7081-4c2d-8e3f-405a6b7c8d9e", "2024-01-01T00:00:00Z", "2024-03-31T00:00:00Z", keyring.AES128GCM, keyring.ValidationUnknown, mk64, keyring.ProtectionNone, nil},
		{"unencrypted-key.xml", "ad5e6f70-8192-4d3e-9f40-5a6b7c8d9eaf", "2024-01-01T00:00:00Z", "2024-03-31T00:00:00Z", keyring.AES256CBC, keyring.HMACSHA256, mk64, keyring.ProtectionNullEncryptor, nil},
		{"masterkey-whitespace.xml", "be6f7081-92a3-4e4f-8051-6b7c8d9eafb0", "2024-01-01T00:00:00Z", "2024-03-31T00:00:00Z", keyring.AES256CBC, keyring.HMACSHA256, mk64, keyring.ProtectionNone, nil},
		{"two-masterkeys.xml", "cf708192-a3b4-4f50-8162-7c8d9eafb0c1", "2024-01-01T00:00:00Z", "2024-03-31T00:00:00Z", 0, 0, nil, keyring.ProtectionNone, keyring.ErrMalformedKey},
		{"dpapi.xml", "d0819203-b4c5-4061-9273-8d9eafb0c1d2", "2024-01-01T00:00:00Z", "2024-03-31T00:00:00Z", 0, 0, nil, keyring.ProtectionDPAPI, keyring.ErrUnsupportedProtection},
		{"dpapi-ng.xml", "e1920314-c5d6-4172-a384-9eafb0c1d2e3", "2024-01-01T00:00:00Z", "2024-03-31T00:00:00Z", 0, 0, nil, keyring.ProtectionDPAPING, keyring.ErrUnsupportedProtection},
		{"azure-keyvault.xml", "f2a30425-d6e7-4283-b495-afb0c1d2e3f4", "2024-01-01T00:00:00Z", "2024-03-31T00:00:00Z", 0, 0, nil, keyring.ProtectionAzureKeyVault, keyring.ErrUnsupportedProtection},
		{"unknown-deserializer.xml", "03b41536-e7f8-4394-85a6-b0c1d2e3f405", "2015-01-01T00:00:00Z", "2015-03-01T00:00:00Z", 0, 0, nil, keyring.ProtectionNone, keyring.ErrUnsupportedAlgorithm},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			k, err := keyring.ParseKey(mustReadKeyXML(t, tc.file), keyring.ParseOptions{})
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			if got, want := k.ID, mustKeyIDXML(t, tc.id); got != want {
				t.Errorf("ID = %s, want %s", got, want)
			}
			if want := mustTimeXML(t, tc.created); !k.Created.Equal(want) {
				t.Errorf("Created = %v, want %v", k.Created, want)
			}
			if want := mustTimeXML(t, tc.expiration); !k.Expiration.Equal(want) {
				t.Errorf("Expiration = %v, want %v", k.Expiration, want)
			}
			if k.Protection != tc.protection {
				t.Errorf("Protection = %v, want %v", k.Protection, tc.protection)
			}
			if k.DeserializerType == "" {
				t.Error("DeserializerType is empty")
			}
			if !bytes.HasPrefix(k.XML, []byte("<key ")) || bytes.Contains(k.XML, []byte("\n  <")) {
				t.Errorf("XML is not the compact element: %.80q", k.XML)
			}
			if tc.descErr != nil {
				if k.Descriptor != nil || !errors.Is(k.DescriptorErr, tc.descErr) {
					t.Fatalf("Descriptor = %v, DescriptorErr = %v; want nil and %v", k.Descriptor, k.DescriptorErr, tc.descErr)
				}
				return
			}
			if k.DescriptorErr != nil {
				t.Fatalf("DescriptorErr = %v", k.DescriptorErr)
			}
			d := k.Descriptor
			if d.Encryption != tc.enc || d.Validation != tc.val {
				t.Errorf("algorithms = %v/%v, want %v/%v", d.Encryption, d.Validation, tc.enc, tc.val)
			}
			if !bytes.Equal(d.MasterKey.Bytes(), tc.masterKey) {
				t.Errorf("master key differs (%d bytes, want %d)", d.MasterKey.Len(), len(tc.masterKey))
			}
		})
	}
}

func TestParseKeyDescriptorErrorsNameTheProtection(t *testing.T) {
	for file, want := range map[string]string{
		"dpapi.xml":          "DPAPI",
		"dpapi-ng.xml":       "DPAPI-NG",
		"azure-keyvault.xml": "Azure Key Vault",
	} {
		k, err := keyring.ParseKey(mustReadKeyXML(t, file), keyring.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		msg := k.DescriptorErr.Error()
		if !strings.Contains(msg, want) || !strings.Contains(msg, "cannot open") && !strings.Contains(msg, "not this platform") {
			t.Errorf("%s: DescriptorErr = %q, want it to name %q and say this platform cannot open it", file, msg, want)
		}
	}
}

func TestParseKeyMalformed(t *testing.T) {
	for _, file := range []string{"malformed-id.xml", "malformed-date.xml", "revocation-key.xml"} {
		t.Run(file, func(t *testing.T) {
			_, err := keyring.ParseKey(mustReadKeyXML(t, file), keyring.ParseOptions{})
			if !errors.Is(err, keyring.ErrMalformedKey) {
				t.Fatalf("ParseKey error = %v, want ErrMalformedKey", err)
			}
		})
	}
	for _, in := range []string{
		"",
		"<key",
		`<key id="3d6d01fd-c0e7-44ae-82dd-013b996b4093"><creationDate>2024-01-01T00:00:00Z</creationDate></key>`,
		`<x:key xmlns:x="urn:x" id="3d6d01fd-c0e7-44ae-82dd-013b996b4093" />`,
	} {
		if _, err := keyring.ParseKey([]byte(in), keyring.ParseOptions{}); err == nil {
			t.Errorf("ParseKey(%q) succeeded", in)
		}
	}
}

func TestParseKeyMissingDescriptorKeepsKey(t *testing.T) {
	in := `<key id="3d6d01fd-c0e7-44ae-82dd-013b996b4093" version="1"><creationDate>2024-01-01T00:00:00Z</creationDate><activationDate>2024-01-01T00:00:00Z</activationDate><expirationDate>2024-03-31T00:00:00Z</expirationDate></key>`
	k, err := keyring.ParseKey([]byte(in), keyring.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if k.Descriptor != nil || k.DescriptorErr == nil {
		t.Fatalf("Descriptor = %v, DescriptorErr = %v; want nil and an error", k.Descriptor, k.DescriptorErr)
	}
}

func TestParseRevocation(t *testing.T) {
	tests := []struct {
		file string
		want keyring.Revocation
		name string
	}{
		{"revocation-key.xml", keyring.Revocation{KeyID: mustKeyIDXML(t, "a11f35fc-1fed-4bd4-b727-056a63b70932"), Reason: "Here's some reason text."}, "revocation-a11f35fc-1fed-4bd4-b727-056a63b70932"},
		{"revocation-all.xml", keyring.Revocation{All: true, Reason: "Here's some reason text."}, "revocation-20150302T0313197573854Z"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			in := mustReadKeyXML(t, tc.file)
			r, err := keyring.ParseRevocation(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.XML, in) {
				t.Errorf("XML = %s, want %s", r.XML, in)
			}
			if r.All != tc.want.All || r.KeyID != tc.want.KeyID || r.Reason != tc.want.Reason {
				t.Errorf("got %+v, want %+v", r, tc.want)
			}
			if got := keyring.RevocationName(r); got != tc.name {
				t.Errorf("RevocationName = %q, want %q", got, tc.name)
			}
			if got, err := keyring.ElementName(in); err != nil || got != tc.name {
				t.Errorf("ElementName = %q, %v, want %q", got, err, tc.name)
			}
		})
	}
	for _, in := range []string{
		string(mustReadKeyXML(t, "revocation-malformed.xml")),
		`<revocation version="1"><revocationDate>2014-01-01T00:00:00Z</revocationDate></revocation>`,
		`<revocation version="1"><key id="*" /></revocation>`,
		`<revocation version="1"><revocationDate>yesterday</revocationDate><key id="*" /></revocation>`,
		`<revocation version="1"><revocationDate>2014-01-01T00:00:00Z</revocationDate><key /></revocation>`,
		`<key id="a11f35fc-1fed-4bd4-b727-056a63b70932" />`,
	} {
		if _, err := keyring.ParseRevocation([]byte(in)); !errors.Is(err, keyring.ErrMalformedRevocation) {
			t.Errorf("ParseRevocation(%q) error = %v, want ErrMalformedRevocation", in, err)
		}
	}
	// ASP.NET Core never reads the date of a single-key revocation.
	r, err := keyring.ParseRevocation([]byte(`<revocation version="1"><key id="a11f35fc-1fed-4bd4-b727-056a63b70932" /></revocation>`))
	if err != nil || r.All || !r.Date.IsZero() {
		t.Errorf("single revocation without date: %+v, %v", r, err)
	}
}

// aspnetVector is one entry of ../testdata/aspnetcore.json, the fields the key ring tests use.
type aspnetVector struct {
	Name            string   `json:"name"`
	Kind            string   `json:"kind"`
	XML             string   `json:"xml"`
	ExpectedKeys    []string `json:"expected_keys"`
	ExpectedRevoked []string `json:"expected_revoked"`
}

func TestKeyRingRevocationVector(t *testing.T) {
	b, err := os.ReadFile("../testdata/aspnetcore.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []aspnetVector
	if err := json.Unmarshal(b, &vectors); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range vectors {
		if v.Kind != "key_ring_revocation" {
			continue
		}
		n++
		t.Run(v.Name, func(t *testing.T) {
			ring, err := keyring.ParseRepository([]byte(v.XML), keyring.ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var keys, revoked []string
			for _, k := range ring.Keys() {
				keys = append(keys, k.ID.String())
				if ring.IsRevoked(k) {
					revoked = append(revoked, k.ID.String())
				}
				if !errors.Is(k.DescriptorErr, keyring.ErrUnsupportedAlgorithm) {
					t.Errorf("key %s: DescriptorErr = %v, want ErrUnsupportedAlgorithm for 'theDeserializer'", k.ID, k.DescriptorErr)
				}
			}
			slices.Sort(keys)
			slices.Sort(revoked)
			want, wantRevoked := slices.Sorted(slices.Values(v.ExpectedKeys)), slices.Sorted(slices.Values(v.ExpectedRevoked))
			if diff := cmp.Diff(want, keys); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantRevoked, revoked); diff != "" {
				t.Errorf("revoked (-want +got):\n%s", diff)
			}
		})
	}
	if n == 0 {
		t.Fatal("no key_ring_revocation vector in ../testdata/aspnetcore.json")
	}
}

func TestParseElementsSkipsAndFails(t *testing.T) {
	good := mustReadKeyXML(t, "v8-compact.xml")
	dpapi := mustReadKeyXML(t, "dpapi.xml")
	badID := mustReadKeyXML(t, "malformed-id.xml")
	badDate := mustReadKeyXML(t, "malformed-date.xml")
	unknown := []byte(`<somethingElse />`)
	ring, err := keyring.ParseElements([][]byte{good, badID, dpapi, unknown, badDate, mustReadKeyXML(t, "revocation-key.xml")}, keyring.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ring.Len() != 2 {
		t.Fatalf("ring has %d keys, want 2 (the good one and the DPAPI one)", ring.Len())
	}
	k, err := ring.Key(mustKeyIDXML(t, "d0819203-b4c5-4061-9273-8d9eafb0c1d2"))
	if err != nil || !errors.Is(k.DescriptorErr, keyring.ErrUnsupportedProtection) {
		t.Errorf("DPAPI key: %v, DescriptorErr %v", err, k.DescriptorErr)
	}
	good1, err := ring.Key(mustKeyIDXML(t, "a11f35fc-1fed-4bd4-b727-056a63b70932"))
	if err != nil || good1.Descriptor == nil || !ring.IsRevoked(good1) {
		t.Errorf("good key: %v, descriptor %v, revoked %v", err, good1.Descriptor, ring.IsRevoked(good1))
	}
	skipped := ring.Skipped()
	type skip struct {
		Name  string
		Index int
		Key   bool
	}
	var got []skip
	for _, s := range skipped {
		got = append(got, skip{s.Name, s.Index, errors.Is(s.Err, keyring.ErrMalformedKey)})
		if s.Err == nil || s.Err.Error() == "" {
			t.Errorf("skipped element %d has no reason", s.Index)
		}
	}
	want := []skip{{"", 1, true}, {"", 3, false}, {"key-14c52647-f809-44a5-96b7-c1d2e3f40516", 4, true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}

	if _, err := keyring.ParseElements([][]byte{good, good}, keyring.ParseOptions{}); !errors.Is(err, keyring.ErrDuplicateKey) {
		t.Errorf("duplicate ids: error = %v, want ErrDuplicateKey", err)
	}
	if _, err := keyring.ParseElements([][]byte{good, mustReadKeyXML(t, "revocation-malformed.xml")}, keyring.ParseOptions{}); !errors.Is(err, keyring.ErrMalformedRevocation) {
		t.Errorf("malformed revocation: error = %v, want ErrMalformedRevocation", err)
	}
	if _, err := keyring.ParseElements([][]byte{good, []byte("<key")}, keyring.ParseOptions{}); !errors.Is(err, keyring.ErrMalformedXML) {
		t.Errorf("broken XML: error = %v, want ErrMalformedXML", err)
	}
}

func TestRepositoryRoundTrip(t *testing.T) {
	elements := [][]byte{mustReadKeyXML(t, "v8-compact.xml"), mustReadKeyXML(t, "gcm.xml"), mustReadKeyXML(t, "revocation-all.xml")}
	doc, err := keyring.MarshalRepository(elements)
	if err != nil {
		t.Fatal(err)
	}
	wantPrefix := "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?><repository><key id="
	if !strings.HasPrefix(string(doc), wantPrefix) || !strings.HasSuffix(string(doc), "</revocation></repository>") {
		t.Errorf("MarshalRepository = %.120q…", doc)
	}
	got, err := keyring.SplitRepository(doc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(elements, got); diff != "" {
		t.Errorf("SplitRepository(MarshalRepository(x)) (-want +got):\n%s", diff)
	}
	empty, err := keyring.MarshalRepository(nil)
	if err != nil || !strings.HasSuffix(string(empty), "<repository />") {
		t.Errorf("empty repository = %q, %v", empty, err)
	}
	if got, err := keyring.SplitRepository(empty); err != nil || len(got) != 0 {
		t.Errorf("SplitRepository(empty) = %q, %v", got, err)
	}
	// An indented document with a namespace declared on the root.
	indented := "<repository xmlns:dp=\"http://schemas.asp.net/2015/03/dataProtection\">\n  <!-- c -->\n  <revocation version=\"1\" dp:note=\"x\">\n    <revocationDate>2014-01-01T00:00:00Z</revocationDate>\n    <key id=\"*\" />\n  </revocation>\n</repository>\n"
	got, err = keyring.SplitRepository([]byte(indented))
	if err != nil {
		t.Fatal(err)
	}
	want := `<revocation version="1" dp:note="x" xmlns:dp="http://schemas.asp.net/2015/03/dataProtection"><revocationDate>2014-01-01T00:00:00Z</revocationDate><key id="*" /></revocation>`
	if len(got) != 1 || string(got[0]) != want {
		t.Errorf("SplitRepository(indented) = %q, want [%q]", got, want)
	}
}
