package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/google/go-cmp/cmp"
)

// umbracoTicket is an Umbraco-like backoffice ticket with claims that exercise every field.
func umbracoTicket() *keyring.Ticket {
	const issuer = keyring.UmbracoScheme
	const str = keyring.ClaimValueTypeString
	ticket := &keyring.Ticket{
		Scheme: keyring.UmbracoScheme,
		Identities: []keyring.Identity{{
			AuthenticationType: keyring.UmbracoScheme,
			NameClaimType:      keyring.DefaultNameClaimType,
			RoleClaimType:      keyring.DefaultRoleClaimType,
			Claims: []keyring.Claim{
				{Type: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier", Value: "-1", ValueType: "http://www.w3.org/2001/XMLSchema#integer", Issuer: issuer, OriginalIssuer: issuer},
				{Type: keyring.DefaultNameClaimType, Value: "admin@example.com", ValueType: str, Issuer: issuer, OriginalIssuer: issuer},
				{Type: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", Value: "Administrator", ValueType: str, Issuer: issuer, OriginalIssuer: issuer},
				{Type: "AspNet.Identity.SecurityStamp", Value: "7c2f8a3e-51d4-4b0b-9a4e-7d2f7f6c0a11", ValueType: str, Issuer: issuer, OriginalIssuer: issuer},
				{Type: keyring.DefaultRoleClaimType, Value: "admin", ValueType: str, Issuer: issuer, OriginalIssuer: "upstream-idp",
					Properties: keyring.Items{{Key: "source", Value: "group-sync"}}},
			},
		}},
	}
	ticket.Properties.SetIssued(t0.Add(-10 * time.Minute))
	ticket.Properties.SetExpires(t0.Add(10 * time.Minute))
	ticket.Properties.Items.Set(".umbraco-session", "e1b2")
	return ticket
}

func mustEncryptCookie(tb testing.TB, ring *keyring.Ring, ticket *keyring.Ticket, appName, scheme string) string {
	tb.Helper()
	v, err := ring.EncryptCookie(t0, ticket, appName, scheme)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// cookieHeader builds a Cookie header holding the cookie name=value chunked in pieces of
// chunkSize, surrounded by other cookies.
func cookieHeader(name, value string, chunkSize int) string {
	parts := []string{".AspNetCore.Antiforgery.x=abc"}
	for _, p := range keyring.ChunkCookie(name, value, chunkSize) {
		parts = append(parts, p.Name+"="+p.Value)
	}
	parts = append(parts, "ARRAffinity=123")
	return "Cookie: " + strings.Join(parts, "; ")
}

func TestDecryptCookie(t *testing.T) {
	dir := goldenRing(t)
	ring := mustLoadDir(t, dir)
	umbraco := mustEncryptCookie(t, ring, umbracoTicket(), "", keyring.UmbracoScheme)
	withApp := mustEncryptCookie(t, ring, umbracoTicket(), "/var/www/site", keyring.UmbracoScheme)
	identity := mustEncryptCookie(t, ring, umbracoTicket(), "", "Identity.Application")
	header := cookieHeader(keyring.UmbracoCookieName, umbraco, 500)
	if !strings.Contains(header, "UMB_UCONTEXT=chunks-") || !strings.Contains(header, "UMB_UCONTEXTC2=") {
		t.Fatalf("test header is not chunked: %s", header)
	}

	tests := []struct {
		name    string
		stdin   string
		args    []string
		wantApp string
	}{
		{"value", "", []string{"--umbraco", umbraco}, ""},
		{"stdin", umbraco + "\n", []string{"--umbraco", "-"}, ""},
		{"chunked header", "", []string{"--umbraco", "--cookie-header", header}, ""},
		{"chunked header from stdin", header, []string{"--umbraco", "--cookie-header", "-"}, ""},
		{"scheme", "", []string{"--scheme", "UmbracoBackOffice", umbraco}, ""},
		{"application names tried in order", "", []string{"--umbraco", "--app-name", "", "--app-name", "/other", "--app-name", "/var/www/site", withApp}, "/var/www/site"},
		{"scheme with a dot and its cookie name", "", []string{"--scheme", "Identity.Application", "--cookie-header", cookieHeader(".AspNetCore.Identity.Application", identity, 0)}, ""},
		{"custom cookie name", "", []string{"--umbraco", "--cookie-name", "MY_AUTH", "--cookie-header", cookieHeader("MY_AUTH", umbraco, 600)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"decrypt-cookie", "--keys", dir, "--json"}, tc.args...)
			r := runCLI(t, t0, tc.stdin, args...)
			if r.code != exitOK || r.stderr != "" {
				t.Fatalf("exit code %d, stderr %q", r.code, r.stderr)
			}
			var got struct {
				KeyID     string   `json:"key_id"`
				KeyStatus string   `json:"key_status"`
				AppName   string   `json:"app_name"`
				Purposes  []string `json:"purposes"`
				Ticket    struct {
					Scheme     string `json:"scheme"`
					Identities []struct {
						Claims []struct {
							Type  string `json:"type"`
							Value string `json:"value"`
						} `json:"claims"`
					} `json:"identities"`
				} `json:"ticket"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
			}
			if got.KeyID != idCurrent || got.KeyStatus != "active" || got.AppName != tc.wantApp {
				t.Errorf("key %s %s app %q, want %s active %q", got.KeyID, got.KeyStatus, got.AppName, idCurrent, tc.wantApp)
			}
			if len(got.Purposes) == 0 || got.Purposes[len(got.Purposes)-1] != "v2" {
				t.Errorf("purposes %q", got.Purposes)
			}
			if len(got.Ticket.Identities) != 1 || len(got.Ticket.Identities[0].Claims) != 5 || got.Ticket.Identities[0].Claims[1].Value != "admin@example.com" {
				t.Errorf("ticket %+v, want the Umbraco ticket's 5 claims", got.Ticket)
			}
		})
	}
}

func TestDecryptCookieGolden(t *testing.T) {
	dir := goldenRing(t)
	ring := mustLoadDir(t, dir)
	value := mustEncryptCookie(t, ring, umbracoTicket(), "/var/www/site", keyring.UmbracoScheme)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"decrypt-cookie.json", []string{"--json"}},
		{"decrypt-cookie.txt", nil},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			args := append([]string{"decrypt-cookie", "--keys", dir, "--umbraco", "--app-name", "/var/www/site", "--cookie-header", cookieHeader(keyring.UmbracoCookieName, value, 600)}, tc.args...)
			r := runCLI(t, t0, "", args...)
			if r.code != exitOK || r.stderr != "" {
				t.Fatalf("exit code %d, stderr %q", r.code, r.stderr)
			}
			checkGolden(t, tc.golden, r.stdout)
		})
	}
}

// TestDecryptCookieJSONFields checks the exact field names of the contract.
func TestDecryptCookieJSONFields(t *testing.T) {
	dir := goldenRing(t)
	ring := mustLoadDir(t, dir)
	value := mustEncryptCookie(t, ring, umbracoTicket(), "", keyring.UmbracoScheme)
	r := runCLI(t, t0, "", "decrypt-cookie", "--keys", dir, "--umbraco", "--json", value)
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &top); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	var ticket map[string]json.RawMessage
	if err := json.Unmarshal(top["ticket"], &ticket); err != nil {
		t.Fatal(err)
	}
	var identities []map[string]json.RawMessage
	if err := json.Unmarshal(ticket["identities"], &identities); err != nil {
		t.Fatal(err)
	}
	var claims []map[string]json.RawMessage
	if err := json.Unmarshal(identities[0]["claims"], &claims); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		obj  map[string]json.RawMessage
		want []string
	}{
		{"top level", top, []string{"key_id", "key_status", "app_name", "purposes", "ticket"}},
		{"ticket", ticket, []string{"scheme", "identities", "properties"}},
		{"identity", identities[0], []string{"authentication_type", "name_claim_type", "role_claim_type", "claims"}},
		{"claim", claims[0], []string{"type", "value", "value_type", "issuer", "original_issuer", "properties"}},
	} {
		for _, f := range tc.want {
			if _, ok := tc.obj[f]; !ok {
				t.Errorf("%s has no field %q: %v", tc.what, f, keysOf(tc.obj))
			}
		}
	}
}

func keysOf(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDecryptCookieFailures(t *testing.T) {
	dir := goldenRing(t)
	ring := mustLoadDir(t, dir)
	good := mustEncryptCookie(t, ring, umbracoTicket(), "/var/www/site", keyring.UmbracoScheme)
	revokedRing := mustRing(t, mustKey(t, idRevoked, t0.Add(-50*24*time.Hour), t0.Add(-50*24*time.Hour), t0.Add(40*24*time.Hour), 4))
	revoked := mustEncryptCookie(t, revokedRing, umbracoTicket(), "", keyring.UmbracoScheme)
	otherRing := mustRing(t, mustKey(t, "66666666-6666-4666-8666-666666666666", t0, t0, t0.Add(time.Hour), 9))
	foreign := mustEncryptCookie(t, otherRing, umbracoTicket(), "", keyring.UmbracoScheme)
	notTicket := mustProtect(t, ring, idCurrent, "not a ticket", "", keyring.CookiePurposes(keyring.UmbracoScheme)...)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"key not in ring", []string{"--umbraco", foreign}, "key 66666666-6666-4666-8666-666666666666 is not in this ring"},
		{"revoked key", []string{"--umbraco", revoked}, "key " + idRevoked + " is revoked"},
		{"wrong application name", []string{"--umbraco", "--app-name", "/wrong", good},
			`did not authenticate with any of the 1 purpose chains tried`},
		{"lists what was tried", []string{"--umbraco", "--app-name", "", "--app-name", "/wrong", good},
			`(tried no application name, purposes ["Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationMiddleware" "UmbracoBackOffice" "v2"]; application name "/wrong", purposes`},
		{"wrong scheme", []string{"--app-name", "/var/www/site", good}, `"Cookies" "v2"`},
		{"not a ticket", []string{"--umbraco", notTicket}, "not a format-5 authentication ticket"},
		{"not a payload", []string{"--umbraco", "aGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IGEgcGF5bG9hZA"}, "not an ASP.NET Core Data Protection payload"},
		{"not base64", []string{"--umbraco", "***"}, "not base64url"},
		{"chunk count only", []string{"--umbraco", "chunks-3"}, "only the chunk count of a chunked cookie"},
		{"cookie not in header", []string{"--umbraco", "--cookie-header", "a=1; b=2"}, "cookie UMB_UCONTEXT is not in the header (it holds a, b)"},
		{"empty header", []string{"--umbraco", "--cookie-header", ""}, "holds no cookies"},
		{"missing chunk", []string{"--umbraco", "--cookie-header", "UMB_UCONTEXT=chunks-2; UMB_UCONTEXTC1=abc"}, "UMB_UCONTEXT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"decrypt-cookie", "--keys", dir}, tc.args...)
			r := runCLI(t, t0, "", args...)
			if r.code != exitFailure {
				t.Errorf("exit code %d, want %d", r.code, exitFailure)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if !strings.HasPrefix(r.stderr, "dpkeyring: decrypt-cookie: ") || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line containing %q", r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, good[:40]) {
				t.Errorf("stderr contains the cookie value")
			}
		})
	}
}

func TestDecryptCookieJSONFailure(t *testing.T) {
	dir := goldenRing(t)
	ring := mustLoadDir(t, dir)
	value := mustEncryptCookie(t, ring, umbracoTicket(), "/var/www/site", keyring.UmbracoScheme)
	r := runCLI(t, t0, "", "decrypt-cookie", "--keys", dir, "--umbraco", "--json", value)
	if r.code != exitFailure || !strings.Contains(r.stderr, "did not authenticate") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("exit code %d, stderr %q; want 1 and one line", r.code, r.stderr)
	}
	var doc struct {
		Code      string `json:"code"`
		Diagnosis struct {
			KeyID     string     `json:"key_id"`
			KeyInRing bool       `json:"key_in_ring"`
			Chains    [][]string `json:"purpose_chains_tried"`
		} `json:"diagnosis"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("stdout is not the JSON failure document: %v\n%s", err, r.stdout)
	}
	if doc.Code != "decrypt_failed" || doc.Diagnosis.KeyID != idCurrent || !doc.Diagnosis.KeyInRing || len(doc.Diagnosis.Chains) != 1 {
		t.Errorf("failure document %+v", doc)
	}
	if strings.Contains(r.stdout, "admin@example.com") || strings.Contains(r.stdout, value[:40]) {
		t.Error("the failure document holds claims or the cookie")
	}
}

// TestEndToEnd is the newcomer's path: keys new into an empty directory, keys list sees the key
// active, a payload and a cookie protected by the keyring API with that ring decrypt through the
// CLI.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir() + "/keys"
	now := time.Now().UTC()
	r := runCLI(t, now, "", "keys", "new", "--dir", dir)
	if r.code != exitOK {
		t.Fatalf("keys new: %d %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	mustMode(t, dir+"/key-"+id+".xml", 0o600)

	r = runCLI(t, now, "", "keys", "list", "--keys", dir, "--json")
	var list struct {
		DefaultKeyID string `json:"default_key_id"`
		Keys         []struct {
			Status string `json:"status"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || list.DefaultKeyID != id || len(list.Keys) != 1 || list.Keys[0].Status != "active" {
		t.Fatalf("keys list: %v %+v %s", err, list, r.stderr)
	}

	ring := mustLoadDir(t, dir)
	payload, err := ring.Protect(now, []byte("secret payload"), keyring.Purposes("app", "Purpose"))
	if err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, now, "", "unprotect", "--keys", dir, "--app-name", "app", "--purpose", "Purpose", keyring.Base64URLEncode(payload))
	if r.code != exitOK || r.stdout != "secret payload" {
		t.Errorf("unprotect: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	ticket := umbracoTicket()
	value, err := ring.EncryptCookie(now, ticket, "", keyring.UmbracoScheme)
	if err != nil {
		t.Fatal(err)
	}
	var outputs []string
	for _, args := range [][]string{
		{"--json", value},
		{"--json", "--cookie-header", cookieHeader(keyring.UmbracoCookieName, value, 700)},
	} {
		r = runCLI(t, now, "", append([]string{"decrypt-cookie", "--keys", dir, "--umbraco"}, args...)...)
		if r.code != exitOK {
			t.Fatalf("decrypt-cookie %v: %d %s", args[1:], r.code, r.stderr)
		}
		outputs = append(outputs, r.stdout)
	}
	if diff := cmp.Diff(outputs[0], outputs[1]); diff != "" {
		t.Errorf("the chunked header decrypts differently from the value (-value +header):\n%s", diff)
	}
	var got struct {
		KeyID  string          `json:"key_id"`
		Ticket *keyring.Ticket `json:"ticket"`
	}
	if err := json.Unmarshal([]byte(outputs[0]), &got); err != nil {
		t.Fatal(err)
	}
	if got.KeyID != id {
		t.Errorf("key_id %s, want %s", got.KeyID, id)
	}
	if diff := cmp.Diff(ticket.Identities, got.Ticket.Identities); diff != "" {
		t.Errorf("decrypted identities differ from the ticket (-want +got):\n%s", diff)
	}
}
