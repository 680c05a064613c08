package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/audit"
)

type rotateDoc struct {
	Result     string    `json:"result"`
	KeyID      string    `json:"key_id"`
	Activation time.Time `json:"activation"`
	Expiration time.Time `json:"expiration"`
	NextDue    time.Time `json:"next_due"`
	Revoked    []string  `json:"revoked"`
	Version    uint64    `json:"version"`
	Message    string    `json:"message"`
}

type revokeDoc struct {
	Result  string   `json:"result"`
	KeyID   string   `json:"key_id"`
	Revoked []string `json:"revoked"`
	Version uint64   `json:"version"`
}

func TestRotateNotDueIsIdempotent(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		rec := e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin, body: `{}`})
		got := decode[rotateDoc](t, rec)
		if got.Result != "not due" || got.KeyID != e.cur.ID.String() || got.Version != 2 || got.Revoked == nil ||
			!got.NextDue.Equal(t0.Add(80*24*time.Hour-96*time.Hour)) || got.Message == "" {
			t.Fatalf("rotate = %+v", got)
		}
	}
	if ev := e.auditEvents(); len(ev) != 3 || ev[0].Action != audit.ActionRotate || ev[0].Result != audit.ResultNotDue || ev[0].TokenName != "ops" || ev[0].Role != "admin" {
		t.Fatalf("audit = %+v", ev)
	}
}

func TestRotateImmediateRevokePrevious(t *testing.T) {
	e := newEnv(t)
	rec := e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin,
		body: `{"immediate": true, "revoke_previous": true, "reason": "key leaked"}`})
	got := decode[rotateDoc](t, rec)
	if got.Result != "created" || !got.Activation.Equal(t0) || len(got.Revoked) != 2 {
		t.Fatalf("rotate = %+v", got)
	}
	// Served at once, with the new key as default and the old ones revoked.
	ring := decode[ringDoc](t, e.do(t, req{path: "/v1/rings/default/keys", token: tokNode, header: map[string]string{"Accept": "application/json"}}))
	if ring.Version != got.Version {
		t.Fatalf("served version %d, rotation wrote %d", ring.Version, got.Version)
	}
	var def string
	revoked := 0
	for _, el := range ring.Elements {
		if el.Default {
			def = el.KeyID
		}
		if el.Status == "revoked" {
			revoked++
		}
	}
	if def != got.KeyID || revoked != 2 {
		t.Fatalf("default %s (want %s), %d revoked", def, got.KeyID, revoked)
	}
	ev := e.auditEvents()
	if last := ev[len(ev)-1]; last.Result != audit.ResultCreated || last.KeyID != got.KeyID || last.Reason != "key leaked" || len(last.Revoked) != 2 {
		t.Fatalf("audit = %+v", last)
	}
}

func TestWriteBadRequests(t *testing.T) {
	e := newEnv(t)
	oldPath := "/v1/rings/default/keys/" + e.old.ID.String() + "/revoke"
	tests := []struct {
		name string
		path string
		body string
		hdr  map[string]string
	}{
		{"revoke_previous without immediate", "/v1/rings/default/rotate", `{"revoke_previous":true,"reason":"x"}`, nil},
		{"revoke_previous without reason", "/v1/rings/default/rotate", `{"immediate":true,"revoke_previous":true}`, nil},
		{"unknown field", "/v1/rings/default/rotate", `{"immediately":true}`, nil},
		{"wrong type", "/v1/rings/default/rotate", `{"immediate":"yes"}`, nil},
		{"not JSON", "/v1/rings/default/rotate", `immediate=true`, nil},
		{"two values", "/v1/rings/default/rotate", `{} {}`, nil},
		{"array", "/v1/rings/default/rotate", `[]`, nil},
		{"long reason", "/v1/rings/default/rotate", `{"reason":"` + strings.Repeat("x", 1025) + `"}`, nil},
		{"control char in reason", oldPath, `{"reason":"a\u0000b"}`, nil},
		{"revoke without reason", oldPath, `{}`, nil},
		{"revoke empty body", oldPath, ``, nil},
		{"revoke bad id", "/v1/rings/default/keys/xyz/revoke", `{"reason":"x"}`, nil},
		{"revoke before without date", "/v1/rings/default/revoke", `{"reason":"x"}`, nil},
		{"revoke before bad date", "/v1/rings/default/revoke", `{"before":"yesterday","reason":"x"}`, nil},
		{"revoke before in the future", "/v1/rings/default/revoke", `{"before":"2030-01-01T00:00:00Z","reason":"x"}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.do(t, req{method: "POST", path: tc.path, token: tokAdmin, body: tc.body, header: tc.hdr}), http.StatusBadRequest, "bad_request")
		})
	}
	checkError(t, e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin, body: `{}`,
		header: map[string]string{"Content-Type": "text/plain"}}), http.StatusUnsupportedMediaType, "unsupported_media_type")
	if rec := e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin, body: `{}`,
		header: map[string]string{"Content-Type": "application/json; charset=utf-8"}}); rec.Code != http.StatusOK {
		t.Errorf("application/json with charset: %d %s", rec.Code, rec.Body)
	}
	if n := len(e.store.rings["default"].elems); n != 2 {
		t.Fatalf("bad requests wrote to the store: %d elements", n)
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	oldPath := "/v1/rings/default/keys/" + e.old.ID.String() + "/revoke"
	got := decode[revokeDoc](t, e.do(t, req{method: "POST", path: oldPath, token: tokAdmin, body: `{"reason":"retired"}`}))
	if got.Result != "revoked" || got.KeyID != e.old.ID.String() || !slices.Equal(got.Revoked, []string{e.old.ID.String()}) || got.Version != 3 {
		t.Fatalf("revoke = %+v", got)
	}
	// Again: nothing written.
	got = decode[revokeDoc](t, e.do(t, req{method: "POST", path: oldPath, token: tokAdmin, body: `{"reason":"retired"}`}))
	if got.Result != "already revoked" || got.Version != 3 {
		t.Fatalf("second revoke = %+v", got)
	}
	// The default key cannot be revoked on its own.
	checkError(t, e.do(t, req{method: "POST", path: "/v1/rings/default/keys/" + e.cur.ID.String() + "/revoke", token: tokAdmin,
		body: `{"reason":"x"}`}), http.StatusConflict, "would_leave_no_default_key")
	checkError(t, e.do(t, req{method: "POST", path: "/v1/rings/default/revoke", token: tokAdmin,
		body: `{"before":"` + t0.Format(time.RFC3339) + `","reason":"x"}`}), http.StatusConflict, "would_leave_no_default_key")
	checkError(t, e.do(t, req{method: "POST", path: "/v1/rings/default/keys/00000000-0000-0000-0000-000000000009/revoke", token: tokAdmin,
		body: `{"reason":"x"}`}), http.StatusNotFound, "key_not_found")
	// Revoking by a date before the current key was created is fine.
	before := e.cur.Created.Add(-time.Hour).Format(time.RFC3339)
	got = decode[revokeDoc](t, e.do(t, req{method: "POST", path: "/v1/rings/default/revoke", token: tokAdmin,
		body: `{"before":"` + before + `","reason":"cleanup"}`}))
	if got.Result != "revoked" || got.KeyID != "*" || len(got.Revoked) != 0 || got.Version != 4 {
		t.Fatalf("revoke before = %+v", got)
	}
	if ev := e.auditEvents(); len(ev) != 2 || ev[0].Action != audit.ActionRevoke || ev[1].KeyID != "*" || ev[1].Reason != "cleanup" {
		t.Fatalf("audit = %+v", ev)
	}
}

func TestRotateBusy(t *testing.T) {
	e := newEnv(t)
	if _, err := e.store.Lock(context.Background(), "default", "someone-else", time.Minute); err != nil {
		t.Fatal(err)
	}
	rec := e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin})
	checkError(t, rec, http.StatusConflict, "busy")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("busy without Retry-After")
	}
	if ev := e.auditEvents(); len(ev) != 1 || ev[0].Result != audit.ResultFailed || ev[0].Error == "" {
		t.Fatalf("audit = %+v", ev)
	}
}

func TestDeniedWritesAreAudited(t *testing.T) {
	e := newEnv(t)
	e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokNode})
	ev := e.auditEvents()
	if len(ev) != 1 || ev[0].Result != audit.ResultDenied || ev[0].TokenName != "node1" || ev[0].Ring != "default" {
		t.Fatalf("audit = %+v", ev)
	}
}

func TestNoWriters(t *testing.T) {
	e := newEnv(t, func(c *httpapiConfig) { c.Writers = nil })
	checkError(t, e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin}), http.StatusServiceUnavailable, "store_unavailable")
}
