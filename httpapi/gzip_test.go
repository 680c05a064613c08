package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/dpkeyring/dpkeyring/httpapi"
)

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"gzip, deflate, br"}, true},
		{[]string{"br;q=1.0, gzip;q=0.8, *;q=0.1"}, true},
		{[]string{"deflate", "gzip"}, true},
		{[]string{"  gzip ; q = 0.5 "}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip;q=0.000"}, false},
		{[]string{"gzip;q=0, *"}, false},
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"identity"}, false},
		{[]string{"deflate, br"}, false},
		{[]string{"gzip;q=abc"}, false},
		{[]string{"gzip;q=2"}, false},
		{[]string{"gzip;level=1"}, true},
		{[]string{"gzipx"}, false},
		{[]string{",,,gzip,,"}, true},
	} {
		if got := httpapi.AcceptsGzip(tc.header); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

// FuzzAcceptsGzip feeds arbitrary Accept-Encoding headers to the parser: it must not panic, and
// a header that refuses gzip explicitly and names no other form of it must never accept it.
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"gzip", "gzip;q=0", "*;q=0.1, gzip;q=0", "br, deflate", "x-gzip;q=0.5", ";;;", "gzip;q="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		httpapi.AcceptsGzip([]string{s})
		if httpapi.AcceptsGzip([]string{s + ",gzip;q=0"}) && !bytes.Contains(bytes.ToLower([]byte(s)), []byte("gzip")) {
			t.Fatalf("%q: gzip accepted although refused with q=0", s+",gzip;q=0")
		}
	})
}

// TestGetRingGzip checks the gzip-compressed ring document: same bytes once decompressed, its
// own strong ETag, Vary on both headers, and a 304 for either ETag whatever the encoding asked.
func TestGetRingGzip(t *testing.T) {
	e := newEnv(t)
	plain := e.do(t, req{path: "/v1/rings/default/keys", token: tokNode})
	if plain.Code != http.StatusOK || plain.Header().Get("Content-Encoding") != "" {
		t.Fatalf("identity: status %d, Content-Encoding %q", plain.Code, plain.Header().Get("Content-Encoding"))
	}
	rec := e.do(t, req{path: "/v1/rings/default/keys", token: tokNode, header: map[string]string{"Accept-Encoding": "gzip, deflate"}})
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	for name, want := range map[string]string{
		"Content-Encoding": "gzip", "ETag": `"2.gz"`, "Vary": "Accept, Accept-Encoding",
		"Content-Type": "application/xml; charset=utf-8", "X-Ring-Version": "2",
	} {
		if got := rec.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
		t.Errorf("Content-Length = %s, body has %s bytes", got, want)
	}
	if rec.Body.Len() >= plain.Body.Len() {
		t.Errorf("gzip body %d bytes, not smaller than the %d-byte document", rec.Body.Len(), plain.Body.Len())
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain.Body.Bytes()) {
		t.Fatal("decompressed document differs from the identity one")
	}

	for _, tc := range []struct{ inm, enc, etag string }{
		{`"2.gz"`, "gzip", `"2.gz"`},
		{`"2"`, "gzip", `"2.gz"`},
		{`"2.gz"`, "", `"2"`},
		{`W/"2.gz"`, "gzip", `"2.gz"`},
	} {
		rec := e.do(t, req{path: "/v1/rings/default/keys", token: tokNode,
			header: map[string]string{"If-None-Match": tc.inm, "Accept-Encoding": tc.enc}})
		if rec.Code != http.StatusNotModified || rec.Header().Get("ETag") != tc.etag || rec.Body.Len() != 0 {
			t.Errorf("If-None-Match %s, Accept-Encoding %q: status %d, ETag %s, %d body bytes; want 304, ETag %s",
				tc.inm, tc.enc, rec.Code, rec.Header().Get("ETag"), rec.Body.Len(), tc.etag)
		}
	}
	// JSON is never compressed.
	js := e.do(t, req{path: "/v1/rings/default/keys", token: tokNode,
		header: map[string]string{"Accept": "application/json", "Accept-Encoding": "gzip"}})
	if js.Code != http.StatusOK || js.Header().Get("Content-Encoding") != "" || js.Header().Get("ETag") != `"2.json"` {
		t.Errorf("JSON with gzip accepted: status %d, Content-Encoding %q, ETag %s", js.Code, js.Header().Get("Content-Encoding"), js.Header().Get("ETag"))
	}
}
