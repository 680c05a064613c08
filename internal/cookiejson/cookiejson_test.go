package cookiejson_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/cookiejson"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/google/go-cmp/cmp"
)

var now = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func mustRingAndCookie(tb testing.TB, appName string) (*keyring.Ring, keyring.Key, string) {
	tb.Helper()
	k, err := keyring.NewKey(now.Add(-time.Hour), now.Add(-time.Hour), now.Add(90*24*time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	r, err := keyring.NewRing([]keyring.Key{k}, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	t := &keyring.Ticket{Scheme: "Cookies", Identities: []keyring.Identity{{
		AuthenticationType: "Cookies",
		Claims:             []keyring.Claim{{Type: "name", Value: "alice-secret-claim"}},
	}}}
	cookie, err := r.EncryptCookie(now, t, appName, "Cookies")
	if err != nil {
		tb.Fatal(err)
	}
	return r, k, cookie
}

func TestSuccess(t *testing.T) {
	r, k, cookie := mustRingAndCookie(t, "shop")
	res, err := r.DecryptCookie(cookie, now, keyring.CookieOptions{AppNames: []string{"other", "shop"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := cookiejson.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"key_id":     k.ID.String(),
		"key_status": "active",
		"app_name":   "shop",
		"purposes":   []any{"shop", keyring.CookieAuthenticationPurpose, "Cookies", "v2"},
	}
	ticket, _ := got["ticket"].(map[string]any)
	delete(got, "ticket")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("document (-want +got):\n%s", diff)
	}
	if ticket["scheme"] != "Cookies" || !strings.Contains(string(b), "alice-secret-claim") {
		t.Errorf("ticket not rendered: %s", b)
	}
	if !strings.HasSuffix(string(b), "}\n") || !strings.Contains(string(b), "\n  \"key_id\": ") {
		t.Errorf("not indented with a final newline: %q", b)
	}
}

func TestFailure(t *testing.T) {
	r, k, cookie := mustRingAndCookie(t, "shop")
	_, err := r.DecryptCookie(cookie, now, keyring.CookieOptions{AppNames: []string{"blog"}})
	if err == nil {
		t.Fatal("decrypted with the wrong app name")
	}
	b, merr := cookiejson.MarshalFailure(err)
	if merr != nil {
		t.Fatal(merr)
	}
	var got struct {
		Code      string `json:"code"`
		Error     string `json:"error"`
		Diagnosis *struct {
			KeyID     string   `json:"key_id"`
			KeyInRing bool     `json:"key_in_ring"`
			KeyStatus string   `json:"key_status"`
			AppNames  []string `json:"app_names_tried"`
			Hint      string   `json:"hint"`
		} `json:"diagnosis"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Code != "decrypt_failed" || got.Diagnosis == nil || got.Diagnosis.KeyID != k.ID.String() || got.Diagnosis.KeyStatus != "active" ||
		!got.Diagnosis.KeyInRing || got.Diagnosis.Hint == "" || got.Error == "" {
		t.Fatalf("failure document = %s", b)
	}
	if cmp.Diff([]string{"blog"}, got.Diagnosis.AppNames) != "" {
		t.Errorf("app_names_tried = %v", got.Diagnosis.AppNames)
	}
	for _, secret := range []string{cookie, "alice-secret-claim"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("failure document contains %q", secret)
		}
	}
	// An error that is not a CookieError renders without a diagnosis.
	d := cookiejson.NewFailure(errors.New("no cookie named x"))
	if d.Code != "decrypt_failed" || d.Diagnosis != nil || d.Error != "no cookie named x" {
		t.Errorf("plain error document = %+v", d)
	}
}
