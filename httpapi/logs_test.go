package httpapi_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestLogsHoldNoSecrets sends tokens, cookies and claims through every kind of request (good and
// bad) and checks that none of them reaches the log, while the access log has what it must.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	cookie := e.mustCookie(t, "shop", "Cookies", "claim-value-alice-7f3a")
	secrets := []string{tokNode, tokAdmin, tokDebug, tokOther, "dpk_wrong-token-secret", cookie, cookie[:40], "claim-value-alice-7f3a"}
	cookieHdr := map[string]string{"Cookie": ".AspNetCore.Cookies=" + cookie}
	for _, r := range []req{
		{path: "/v1/rings/default/keys", token: tokNode, header: cookieHdr},
		{path: "/v1/rings/default/keys", token: "dpk_wrong-token-secret"},
		{path: "/v1/rings/default/status", token: tokAdmin},
		{path: "/v1/rings/default/status", token: tokNode},
		{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin, body: `{"immediate":true,"reason":"r"}`},
		{method: "POST", path: debugPath, token: tokDebug, body: `{"value":` + jsonString(cookie) + `}`},
		{method: "POST", path: debugPath, token: tokDebug, body: `{"value":` + jsonString(cookie) + `,"app_names":["x"]}`},
		{method: "POST", path: debugPath, token: tokDebug, body: `{"cookie_header":` + jsonString(".AspNetCore.Cookies="+cookie) + `}`},
		{method: "POST", path: debugPath, token: tokDebug, body: `{"value":` + jsonString(cookie) + `,"bogus":1}`},
		{method: "POST", path: debugPath, token: tokDebug, remote: "192.0.2.1:1", body: `{"value":` + jsonString(cookie) + `}`},
		{path: "/v1/rings/default/keys?version=" + cookie[:20], token: tokNode},
	} {
		e.do(t, r)
	}
	// A 5xx is logged with its error: make one (the store fails during a write).
	e.store.failing.Store(true)
	if rec := e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin}); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("rotate with failing store: %d", rec.Code)
	}

	logs := e.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log contains a secret %.24q…", s)
		}
	}
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		lines = append(lines, m)
	}
	var access, failed int
	for _, m := range lines {
		switch m["msg"] {
		case "request":
			access++
			for _, k := range []string{"request_id", "method", "path", "status", "duration_ms"} {
				if _, ok := m[k]; !ok {
					t.Errorf("access log line without %s: %v", k, m)
				}
			}
		case "request failed":
			failed++
			if m["error"] == nil || m["request_id"] == nil {
				t.Errorf("5xx log line without error or request id: %v", m)
			}
		}
	}
	if access != 12 || failed != 1 {
		t.Errorf("%d access lines and %d error lines, want 12 and 1:\n%s", access, failed, logs)
	}
	if !strings.Contains(logs, `"token_name":"debugger"`) || !strings.Contains(logs, `"role":"admin"`) {
		t.Errorf("access log lacks token names and roles:\n%s", logs)
	}
	// Nor does the audit log.
	for _, ev := range e.auditEvents() {
		b, _ := json.Marshal(ev)
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("audit event holds a secret: %s", b)
			}
		}
	}
}
