package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestEveryEndpointEveryRole checks the status of every endpoint for every kind of caller: no
// token, a node of the ring, an admin, a debug token, and a node of another ring.
func TestEveryEndpointEveryRole(t *testing.T) {
	type want struct{ none, node, admin, debug, other int }
	const (
		ok   = http.StatusOK
		unau = http.StatusUnauthorized
		forb = http.StatusForbidden
	)
	e := newEnv(t)
	oldID, curID := e.old.ID.String(), e.cur.ID.String()
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		want   want
	}{
		{"healthz", "GET", "/healthz", "", want{ok, ok, ok, ok, ok}},
		{"readyz", "GET", "/readyz", "", want{ok, ok, ok, ok, ok}},
		{"openapi", "GET", "/v1/openapi.yaml", "", want{ok, ok, ok, ok, ok}},
		{"metrics", "GET", "/metrics", "", want{unau, ok, ok, ok, ok}},
		{"list rings", "GET", "/v1/rings", "", want{unau, ok, ok, ok, ok}},
		{"get ring", "GET", "/v1/rings/default/keys", "", want{unau, ok, ok, forb, forb}},
		{"get key", "GET", "/v1/rings/default/keys/" + curID, "", want{unau, ok, ok, forb, forb}},
		{"status", "GET", "/v1/rings/default/status", "", want{unau, forb, ok, forb, forb}},
		{"rotate", "POST", "/v1/rings/default/rotate", "", want{unau, forb, ok, forb, forb}},
		{"revoke key", "POST", "/v1/rings/default/keys/" + oldID + "/revoke", `{"reason":"test"}`, want{unau, forb, ok, forb, forb}},
		{"revoke before", "POST", "/v1/rings/default/revoke", `{"before":"2020-01-01T00:00:00Z","reason":"test"}`, want{unau, forb, ok, forb, forb}},
		{"decrypt cookie", "POST", "/v1/rings/default/debug/decrypt-cookie", `{"value":"CfDJ8AAAA"}`,
			want{unau, forb, forb, http.StatusUnprocessableEntity, forb}},
		{"unknown ring", "GET", "/v1/rings/nope/keys", "", want{unau, forb, http.StatusNotFound, forb, forb}},
		{"unknown route", "GET", "/v1/nothing", "", want{http.StatusNotFound, http.StatusNotFound, http.StatusNotFound, http.StatusNotFound, http.StatusNotFound}},
	}
	callers := []struct {
		name  string
		token string
		pick  func(want) int
	}{
		{"none", "", func(w want) int { return w.none }},
		{"node", tokNode, func(w want) int { return w.node }},
		{"admin", tokAdmin, func(w want) int { return w.admin }},
		{"debug", tokDebug, func(w want) int { return w.debug }},
		{"other ring", tokOther, func(w want) int { return w.other }},
	}
	codes := map[int]string{unau: "unauthorized", forb: "forbidden", http.StatusUnprocessableEntity: "decrypt_failed"}
	for _, tc := range tests {
		for _, c := range callers {
			t.Run(tc.name+"/"+c.name, func(t *testing.T) {
				rec := e.do(t, req{method: tc.method, path: tc.path, token: c.token, body: tc.body})
				want := c.pick(tc.want)
				code := codes[want]
				if tc.name == "unknown ring" && want == http.StatusNotFound {
					code = "ring_not_found"
				} else if want == http.StatusNotFound {
					code = "not_found"
				}
				if code != "" {
					checkError(t, rec, want, code)
					if want == unau && rec.Header().Get("WWW-Authenticate") == "" {
						t.Error("401 without WWW-Authenticate")
					}
					return
				}
				if rec.Code != want {
					t.Fatalf("status = %d, want %d; body %s", rec.Code, want, rec.Body)
				}
			})
		}
	}
}

func TestBadToken(t *testing.T) {
	e := newEnv(t)
	for _, h := range []string{"Bearer dpk_wrong", "Basic Zm9vOmJhcg==", "Bearer", "bearer  "} {
		rec := e.do(t, req{path: "/v1/rings/default/keys", header: map[string]string{"Authorization": h}})
		checkError(t, rec, http.StatusUnauthorized, "unauthorized")
	}
}

func TestListRingsShowsGrantedRings(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		token string
		want  []string
	}{
		{tokAdmin, []string{"default", "other"}},
		{tokNode, []string{"default"}},
		{tokOther, []string{"other"}},
	}
	for _, tc := range tests {
		rec := e.do(t, req{path: "/v1/rings", token: tc.token})
		var got struct {
			Rings []struct {
				Name    string `json:"name"`
				Version uint64 `json:"version"`
				Loaded  bool   `json:"loaded"`
			} `json:"rings"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range got.Rings {
			names = append(names, r.Name)
			if !r.Loaded || r.Version == 0 {
				t.Errorf("ring %s: loaded %v version %d", r.Name, r.Loaded, r.Version)
			}
		}
		if len(names) != len(tc.want) || names[0] != tc.want[0] || names[len(names)-1] != tc.want[len(tc.want)-1] {
			t.Errorf("token %s sees %v, want %v", principals[tc.token].Name, names, tc.want)
		}
	}
}
