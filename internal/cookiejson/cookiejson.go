// Package cookiejson renders the outcome of [keyring.Ring.DecryptCookie] as JSON, the one form
// shared by `dpkeyring decrypt-cookie --json` and the server's debug decrypt-cookie endpoint,
// so both print identical documents.
//
// A decrypted cookie renders as
//
//	{"decrypted": true, "key_id": "…", "key_status": "active", "app_name": "…",
//	 "purposes": ["…"], "ticket": {…}}
//
// and a failure as
//
//	{"decrypted": false, "error": "…", "diagnosis": {"key_id": "…", "key_in_ring": true,
//	 "key_status": "revoked", "app_names_tried": ["…"], "purpose_chains_tried": [["…"]],
//	 "hint": "…"}}
//
// The success document holds the ticket's claims: callers must never log it. The failure
// document never holds the cookie, plaintext or claims.
package cookiejson

import (
	"encoding/json"
	"errors"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// Document is the JSON document of one decryption attempt.
type Document struct {
	// Decrypted is true when the cookie was decrypted and its ticket read.
	Decrypted bool `json:"decrypted"`
	// KeyID, KeyStatus, AppName, Purposes and Ticket are set when Decrypted: see
	// [keyring.CookieResult].
	KeyID     string          `json:"key_id,omitempty"`
	KeyStatus string          `json:"key_status,omitempty"`
	AppName   *string         `json:"app_name,omitempty"`
	Purposes  []string        `json:"purposes,omitempty"`
	Ticket    *keyring.Ticket `json:"ticket,omitempty"`
	// Error is the error message when not Decrypted (it never holds the cookie or claims).
	Error string `json:"error,omitempty"`
	// Diagnosis explains the failure when DecryptCookie returned a [*keyring.CookieError].
	Diagnosis *keyring.CookieDiagnosis `json:"diagnosis,omitempty"`
}

// New returns the document for DecryptCookie's result and error (or any error met before, such
// as a cookie that could not be reassembled: then Diagnosis is nil).
func New(res *keyring.CookieResult, err error) Document {
	if err != nil || res == nil {
		d := Document{Error: "no result"}
		if err != nil {
			d.Error = err.Error()
		}
		var ce *keyring.CookieError
		if errors.As(err, &ce) {
			diag := ce.Diagnosis
			d.Diagnosis = &diag
		}
		return d
	}
	app := res.AppName
	return Document{
		Decrypted: true,
		KeyID:     res.KeyID.String(),
		KeyStatus: res.KeyStatus.String(),
		AppName:   &app,
		Purposes:  res.Purposes,
		Ticket:    res.Ticket,
	}
}

// Marshal returns [New]'s document as indented JSON (two spaces) with a final newline.
func Marshal(res *keyring.CookieResult, err error) ([]byte, error) {
	b, merr := json.MarshalIndent(New(res, err), "", "  ")
	if merr != nil {
		return nil, merr
	}
	return append(b, '\n'), nil
}
