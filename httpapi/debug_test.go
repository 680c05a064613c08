package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/dpkeyring/dpkeyring/internal/cookiejson"
	"github.com/dpkeyring/dpkeyring/keyring"
	"golang.org/x/time/rate"
)

const debugPath = "/v1/rings/default/debug/decrypt-cookie"

// mustCookie returns a cookie protected with the default key of the env's ring "default".
func (e *env) mustCookie(tb testing.TB, appName, scheme, claim string) string {
	tb.Helper()
	r, err := keyring.NewRing([]keyring.Key{e.old, e.cur}, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	t := &keyring.Ticket{Scheme: scheme, Identities: []keyring.Identity{{AuthenticationType: scheme,
		Claims: []keyring.Claim{{Type: "name", Value: claim}}}}}
	c, err := r.EncryptCookie(t0, t, appName, scheme)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestDebugDecryptCookie(t *testing.T) {
	e := newEnv(t)
	cookie := e.mustCookie(t, "shop", "Cookies", "alice")

	// The ring's configured app name "shop" is tried by default; the answer is the CLI's JSON.
	rec := e.do(t, req{method: "POST", path: debugPath, token: tokDebug, body: `{"value":` + jsonString(cookie) + `}`})
	if rec.Code != http.StatusOK {
		t.Fatalf("decrypt: %d %s", rec.Code, rec.Body)
	}
	r, _ := keyring.NewRing([]keyring.Key{e.old, e.cur}, nil, nil)
	res, err := r.DecryptCookie(cookie, t0, keyring.CookieOptions{AppNames: []string{"shop"}})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := cookiejson.Marshal(res)
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Fatalf("body differs from the CLI's JSON:\n got %s\nwant %s", rec.Body, want)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Error("decrypted cookie answer may be cached")
	}

	// From a Cookie header, with chunks.
	var hdr []string
	for _, p := range keyring.ChunkCookie(".AspNetCore.Cookies", cookie, 100) {
		hdr = append(hdr, p.Name+"="+p.Value)
	}
	rec = e.do(t, req{method: "POST", path: debugPath, token: tokDebug,
		body: `{"cookie_header":` + jsonString("other=1; "+strings.Join(hdr, "; ")) + `}`})
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), want) {
		t.Fatalf("decrypt from chunked header: %d %s", rec.Code, rec.Body)
	}

	// Wrong app name: 422 with a diagnosis naming the key and what was tried.
	rec = e.do(t, req{method: "POST", path: debugPath, token: tokDebug, body: `{"value":` + jsonString(cookie) + `,"app_names":["blog"]}`})
	checkError(t, rec, http.StatusUnprocessableEntity, "decrypt_failed")
	var fail struct {
		Diagnosis struct {
			KeyID     string   `json:"key_id"`
			KeyInRing bool     `json:"key_in_ring"`
			AppNames  []string `json:"app_names_tried"`
			Hint      string   `json:"hint"`
		} `json:"diagnosis"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &fail); err != nil {
		t.Fatal(err)
	}
	if d := fail.Diagnosis; d.KeyID != e.cur.ID.String() || !d.KeyInRing || len(d.AppNames) != 1 || d.AppNames[0] != "blog" || d.Hint == "" {
		t.Fatalf("diagnosis = %+v", d)
	}
	// A cookie protected with a key of another ring: the hint says so.
	foreign, _ := keyring.NewRing([]keyring.Key{mustKey(t, t0, -1, -1, 90)}, nil, nil)
	fc, err := foreign.EncryptCookie(t0, &keyring.Ticket{Scheme: "Cookies"}, "shop", "Cookies")
	if err != nil {
		t.Fatal(err)
	}
	rec = e.do(t, req{method: "POST", path: debugPath, token: tokDebug, body: `{"value":` + jsonString(fc) + `}`})
	checkError(t, rec, http.StatusUnprocessableEntity, "decrypt_failed")
	if !strings.Contains(rec.Body.String(), `"key_in_ring": false`) && !strings.Contains(rec.Body.String(), `"key_in_ring":false`) ||
		!strings.Contains(rec.Body.String(), "another key ring") {
		t.Fatalf("foreign cookie diagnosis: %s", rec.Body)
	}

	// Bad requests.
	for _, body := range []string{`{}`, `{"value":"x","cookie_header":"a=b"}`, `{"value":"x","umbraco":true,"scheme":"S"}`, `{"value":"x","cookie_name":"n"}`} {
		checkError(t, e.do(t, req{method: "POST", path: debugPath, token: tokDebug, body: body}), http.StatusBadRequest, "bad_request")
	}
	// A header without the cookie: 422 without a diagnosis.
	rec = e.do(t, req{method: "POST", path: debugPath, token: tokDebug, body: `{"cookie_header":"a=b"}`})
	checkError(t, rec, http.StatusUnprocessableEntity, "decrypt_failed")

	// Every call is audited, without the cookie.
	ev := e.auditEvents()
	if len(ev) < 4 || ev[0].Action != "decrypt" || ev[0].Result != "ok" || ev[0].KeyID != e.cur.ID.String() || ev[2].Result != "no_match" {
		t.Fatalf("audit = %+v", ev)
	}
	for _, x := range ev {
		if strings.Contains(x.Error+x.Reason, cookie[:20]) {
			t.Fatal("audit holds the cookie")
		}
	}
}

func TestDebugDecryptUmbraco(t *testing.T) {
	e := newEnv(t)
	cookie := e.mustCookie(t, "", keyring.UmbracoScheme, "admin@example.com")
	rec := e.do(t, req{method: "POST", path: debugPath, token: tokDebug,
		body: `{"umbraco":true,"app_names":[""],"cookie_header":` + jsonString(keyring.UmbracoCookieName+"="+cookie) + `}`})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "admin@example.com") {
		t.Fatalf("umbraco: %d %s", rec.Code, rec.Body)
	}
}

func TestDebugDisabled(t *testing.T) {
	e := newEnv(t, func(c *httpapiConfig) { c.EnableDebugDecrypt = false })
	checkError(t, e.do(t, req{method: "POST", path: debugPath, token: tokDebug, body: `{"value":"x"}`}), http.StatusNotFound, "not_found")
}

func TestDebugLoopbackOnly(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		remote string
		hdr    map[string]string
		want   int
	}{
		{"ipv4 loopback", "127.0.0.1:5000", nil, http.StatusUnprocessableEntity},
		{"ipv6 loopback", "[::1]:5000", nil, http.StatusUnprocessableEntity},
		{"remote", "192.0.2.7:5000", nil, http.StatusForbidden},
		{"mapped remote", "[::ffff:192.0.2.7]:5000", nil, http.StatusForbidden},
		{"x-forwarded-for", "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "192.0.2.7"}, http.StatusForbidden},
		{"forwarded", "127.0.0.1:5000", map[string]string{"Forwarded": "for=192.0.2.7"}, http.StatusForbidden},
		{"x-real-ip", "127.0.0.1:5000", map[string]string{"X-Real-Ip": "192.0.2.7"}, http.StatusForbidden},
		{"garbage remote", "somewhere", nil, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, req{method: "POST", path: debugPath, token: tokDebug, body: `{"value":"CfDJ8xxxx"}`, remote: tc.remote, header: tc.hdr})
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
		})
	}
	// The proxy check comes before the token: no token, proxied -> 403, not 401.
	checkError(t, e.do(t, req{method: "POST", path: debugPath, remote: "192.0.2.7:1"}), http.StatusForbidden, "forbidden")
}

func TestDebugRateLimited(t *testing.T) {
	e := newEnv(t, func(c *httpapiConfig) { c.DebugBurst, c.DebugRate = 2, rate.Limit(0.001) })
	for i := range 3 {
		rec := e.do(t, req{method: "POST", path: debugPath, token: tokDebug, body: `{"value":"x"}`})
		if i < 2 {
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("request %d: %d", i, rec.Code)
			}
			continue
		}
		checkError(t, rec, http.StatusTooManyRequests, "rate_limited")
		if rec.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
}
