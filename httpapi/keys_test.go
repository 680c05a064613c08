package httpapi_test

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/google/go-cmp/cmp"
)

type elementDoc struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	KeyID      string `json:"key_id"`
	Status     string `json:"status"`
	Default    bool   `json:"default"`
	Activation string `json:"activation"`
	Reason     string `json:"reason"`
	XML        string `json:"xml"`
}

type ringDoc struct {
	Ring     string       `json:"ring"`
	Version  uint64       `json:"version"`
	Elements []elementDoc `json:"elements"`
}

func TestGetRingXML(t *testing.T) {
	e := newEnv(t)
	for _, accept := range []string{"", "application/xml", "*/*", "application/json;q=0.5, application/xml"} {
		rec := e.do(t, req{path: "/v1/rings/default/keys", token: tokNode, header: map[string]string{"Accept": accept}})
		if rec.Code != http.StatusOK {
			t.Fatalf("Accept %q: status %d: %s", accept, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/xml; charset=utf-8" {
			t.Fatalf("Accept %q: Content-Type %q", accept, ct)
		}
		if got := rec.Header().Get("ETag"); got != `"2"` {
			t.Errorf("ETag = %s, want \"2\"", got)
		}
		if !bytes.HasPrefix(rec.Body.Bytes(), []byte("\ufeff<?xml")) {
			t.Errorf("body does not start with the BOM and XML declaration: %.40q", rec.Body)
		}
		r, err := keyring.ParseRepository(rec.Body.Bytes(), keyring.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		k, err := r.DefaultKey(t0)
		if err != nil || k.ID != e.cur.ID || r.Len() != 2 {
			t.Fatalf("served ring: %d keys, default %v (%v); want 2 keys, default %v", r.Len(), k.ID, err, e.cur.ID)
		}
		if !bytes.Equal(k.Descriptor.MasterKey.Bytes(), e.cur.Descriptor.MasterKey.Bytes()) {
			t.Fatal("served key has other key material")
		}
	}
}

func TestGetRingJSON(t *testing.T) {
	e := newEnv(t)
	rec := e.do(t, req{path: "/v1/rings/default/keys", token: tokAdmin, header: map[string]string{"Accept": "application/json"}})
	if rec.Code != http.StatusOK || rec.Header().Get("ETag") != `"2.json"` || rec.Header().Get("Vary") != "Accept, Accept-Encoding" {
		t.Fatalf("status %d ETag %s Vary %s", rec.Code, rec.Header().Get("ETag"), rec.Header().Get("Vary"))
	}
	got := decode[ringDoc](t, rec)
	want := ringDoc{Ring: "default", Version: 2, Elements: []elementDoc{
		{Name: "key-" + e.old.ID.String(), Kind: "key", KeyID: e.old.ID.String(), Status: "expired", XML: string(e.old.XML),
			Activation: e.old.Activation.Format("2006-01-02T15:04:05Z07:00")},
		{Name: "key-" + e.cur.ID.String(), Kind: "key", KeyID: e.cur.ID.String(), Status: "active", Default: true, XML: string(e.cur.XML),
			Activation: e.cur.Activation.Format("2006-01-02T15:04:05Z07:00")},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON ring (-want +got):\n%s", diff)
	}
	// A revocation is described too.
	if rec := e.do(t, req{method: "POST", path: "/v1/rings/default/keys/" + e.old.ID.String() + "/revoke", token: tokAdmin,
		body: `{"reason":"leaked"}`}); rec.Code != http.StatusOK {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	got = decode[ringDoc](t, e.do(t, req{path: "/v1/rings/default/keys", token: tokAdmin, header: map[string]string{"Accept": "application/json"}}))
	if len(got.Elements) != 3 || got.Elements[0].Status != "revoked" {
		t.Fatalf("after revocation: %+v", got.Elements)
	}
	if rev := got.Elements[2]; rev.Kind != "revocation" || rev.KeyID != e.old.ID.String() || rev.Reason != "leaked" {
		t.Errorf("revocation element = %+v", rev)
	}
}

func TestETag(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		header map[string]string
		query  string
		want   int
	}{
		{"no condition", nil, "", http.StatusOK},
		{"current", map[string]string{"If-None-Match": `"2"`}, "", http.StatusNotModified},
		{"weak current", map[string]string{"If-None-Match": `W/"2"`}, "", http.StatusNotModified},
		{"list with current", map[string]string{"If-None-Match": `"1", "2"`}, "", http.StatusNotModified},
		{"json tag", map[string]string{"If-None-Match": `"2.json"`, "Accept": "application/json"}, "", http.StatusNotModified},
		{"old", map[string]string{"If-None-Match": `"1"`}, "", http.StatusOK},
		{"foreign tag", map[string]string{"If-None-Match": `"abc"`}, "", http.StatusOK},
		{"version param current", nil, "?version=2", http.StatusNotModified},
		{"version param old", nil, "?version=1", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, req{path: "/v1/rings/default/keys" + tc.query, token: tokNode, header: tc.header})
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d", rec.Code, tc.want)
			}
			if rec.Header().Get("ETag") == "" || rec.Header().Get("X-Ring-Version") != "2" {
				t.Errorf("ETag %q, X-Ring-Version %q", rec.Header().Get("ETag"), rec.Header().Get("X-Ring-Version"))
			}
			if tc.want == http.StatusNotModified && rec.Body.Len() != 0 {
				t.Errorf("304 with a body: %q", rec.Body)
			}
		})
	}
}

func TestGetKey(t *testing.T) {
	e := newEnv(t)
	id := e.cur.ID.String()
	rec := e.do(t, req{path: "/v1/rings/default/keys/" + id, token: tokNode})
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), e.cur.XML) {
		t.Fatalf("XML key: %d %s", rec.Code, rec.Body)
	}
	rec = e.do(t, req{path: "/v1/rings/default/keys/" + id, token: tokNode, header: map[string]string{"Accept": "application/json"}})
	if got := decode[elementDoc](t, rec); got.KeyID != id || got.Status != "active" || got.XML != string(e.cur.XML) {
		t.Fatalf("JSON key: %+v", got)
	}
	checkError(t, e.do(t, req{path: "/v1/rings/default/keys/00000000-0000-0000-0000-000000000001", token: tokNode}),
		http.StatusNotFound, "key_not_found")
	checkError(t, e.do(t, req{path: "/v1/rings/default/keys/not-a-guid", token: tokNode}), http.StatusBadRequest, "bad_request")
}

func TestBadQueryAndHeaders(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []req{
		{path: "/v1/rings/default/keys?wait=soon"},
		{path: "/v1/rings/default/keys?wait=-5s"},
		{path: "/v1/rings/default/keys?version=x"},
		{path: "/v1/rings/default/keys", header: map[string]string{"X-Node-Id": "bad id with spaces"}},
		{path: "/v1/rings/default/keys", header: map[string]string{"X-Node-Id": string(bytes.Repeat([]byte("a"), 129))}},
	} {
		tc.token = tokNode
		checkError(t, e.do(t, tc), http.StatusBadRequest, "bad_request")
	}
	checkError(t, e.do(t, req{method: "DELETE", path: "/v1/rings/default/keys", token: tokNode}), http.StatusMethodNotAllowed, "method_not_allowed")
}

func TestNodeTracking(t *testing.T) {
	e := newEnv(t)
	// node-a holds version 1 (a 304 for it would mean it has the current one: ask with 1).
	e.do(t, req{path: "/v1/rings/default/keys?version=1", token: tokNode, header: map[string]string{"X-Node-Id": "node-a"}})
	e.do(t, req{path: "/v1/rings/default/keys", token: tokNode}) // recorded under the token name
	st := decode[statusDoc](t, e.do(t, req{path: "/v1/rings/default/status", token: tokAdmin}))
	var names []string
	for _, n := range st.Nodes {
		names = append(names, n.Node+"@"+strconv.FormatUint(n.Version, 10))
		if !n.Current || n.Lagging {
			t.Errorf("node %+v should be current", n)
		}
	}
	if diff := cmp.Diff([]string{"node-a@2", "node1@2"}, names); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
}

func TestHead(t *testing.T) {
	e := newEnv(t)
	if rec := e.do(t, req{method: "HEAD", path: "/healthz"}); rec.Code != http.StatusOK {
		t.Errorf("HEAD /healthz = %d", rec.Code)
	}
	rec := e.do(t, req{method: "HEAD", path: "/v1/rings/default/keys", token: tokNode})
	if rec.Code != http.StatusOK || rec.Header().Get("ETag") != `"2"` {
		t.Errorf("HEAD keys = %d ETag %q", rec.Code, rec.Header().Get("ETag"))
	}
}
