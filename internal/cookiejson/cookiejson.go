// Package cookiejson renders the outcome of [keyring.Ring.DecryptCookie] as JSON, the one form
// shared by `dpkeyring decrypt-cookie --json` and the server's debug decrypt-cookie endpoint,
// so both print identical documents.
//
// A decrypted cookie renders as its [keyring.CookieResult]:
//
//	{"key_id": "…", "key_status": "active", "app_name": "…", "purposes": ["…"], "ticket": {…}}
//
// and a failure as a [Failure]:
//
//	{"error": "…", "code": "decrypt_failed", "diagnosis": {"key_id": "…", "key_in_ring": true,
//	 "key_status": "revoked", "app_names_tried": ["…"], "purpose_chains_tried": [["…"]],
//	 "hint": "…"}}
//
// The success document holds the ticket's claims: callers must never log it. The failure
// document never holds the cookie, plaintext or claims.
package cookiejson

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// CodeDecryptFailed is the code of every [Failure].
const CodeDecryptFailed = "decrypt_failed"

// Marshal returns res as JSON indented by two spaces, with a final newline.
func Marshal(res *keyring.CookieResult) ([]byte, error) {
	return encode(res)
}

// Failure is the JSON document of a failed decryption.
type Failure struct {
	// Error is the error message (it never holds the cookie or claims).
	Error string `json:"error"`
	// Code is always [CodeDecryptFailed].
	Code string `json:"code"`
	// Diagnosis explains the failure when DecryptCookie returned a [*keyring.CookieError]; nil
	// for errors met before decrypting (a cookie that could not be reassembled).
	Diagnosis *keyring.CookieDiagnosis `json:"diagnosis,omitempty"`
}

// NewFailure returns the failure document of err.
func NewFailure(err error) Failure {
	f := Failure{Error: "unknown error", Code: CodeDecryptFailed}
	if err != nil {
		f.Error = err.Error()
	}
	var ce *keyring.CookieError
	if errors.As(err, &ce) {
		diag := ce.Diagnosis
		f.Diagnosis = &diag
	}
	return f
}

// MarshalFailure returns [NewFailure]'s document as JSON indented by two spaces, with a final
// newline.
func MarshalFailure(err error) ([]byte, error) {
	return encode(NewFailure(err))
}

func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetIndent("", "  ")
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
