package keyring

import (
	"errors"
	"fmt"
	"time"
)

// DefaultCookieScheme is CookieAuthenticationDefaults.AuthenticationScheme, the scheme
// AddCookie() registers when given none.
const DefaultCookieScheme = "Cookies"

// CookieOptions say how to decrypt a cookie-authentication cookie.
type CookieOptions struct {
	// Scheme is the authentication scheme whose protector made the cookie; "" means
	// [DefaultCookieScheme]. Use [UmbracoScheme] for the Umbraco backoffice.
	Scheme string
	// AppNames are candidate application names (application discriminators), tried in order;
	// "" stands for no discriminator. Empty means just "".
	AppNames []string
	// ExtraPurposes are appended to the purpose chain (the TLS token binding purpose that
	// TicketDataFormat.Protect adds when HTTP.sys supplies one; practically never).
	ExtraPurposes []string
}

// CookieResult is a decrypted cookie.
type CookieResult struct {
	// KeyID is the key id in the payload header.
	KeyID KeyID `json:"key_id"`
	// Key is the ring's key that decrypted the cookie.
	Key Key `json:"-"`
	// KeyStatus is the key's status at the time given to DecryptCookie.
	KeyStatus Status `json:"key_status"`
	// AppName is the application name that worked ("" for none).
	AppName string `json:"app_name"`
	// Purposes is the full purpose chain that worked, application name first.
	Purposes []string `json:"purposes"`
	// Ticket is the decoded authentication ticket.
	Ticket *Ticket `json:"ticket"`
}

// CookieDiagnosis explains why a cookie could not be decrypted. It never contains the cookie
// value, the plaintext or claims.
type CookieDiagnosis struct {
	// KeyID is the key id in the payload header, or nil if the header could not be read.
	KeyID *KeyID `json:"key_id,omitempty"`
	// KeyInRing reports whether the ring holds that key.
	KeyInRing bool `json:"key_in_ring"`
	// KeyStatus is the key's status at the given time; StatusUnknown when it is not in the ring.
	KeyStatus Status `json:"key_status"`
	// AppNames are the application names tried, in order ("" for none).
	AppNames []string `json:"app_names_tried"`
	// PurposeChains are the full purpose chains tried, in the same order.
	PurposeChains [][]string `json:"purpose_chains_tried"`
	// Hint says in plain words what most likely went wrong.
	Hint string `json:"hint"`
}

// CookieError is the error of [Ring.DecryptCookie]. It wraps the sentinel that describes the
// failure and carries a [CookieDiagnosis] for operators. Its message never contains the cookie
// value, the plaintext or claims.
type CookieError struct {
	Diagnosis CookieDiagnosis
	Err       error
}

// Error returns the hint followed by the underlying error.
func (e *CookieError) Error() string {
	return "keyring: cannot decrypt cookie: " + e.Diagnosis.Hint + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *CookieError) Unwrap() error { return e.Err }

// DecryptCookie decrypts a cookie-authentication cookie value (already reassembled from its
// chunks, see [ReassembleCookie]) as CookieAuthenticationHandler does: base64url-decode (after
// percent-unescaping if the value contains '%'), read the key id from the payload header,
// unprotect with the purpose chain [app name,] [CookiePurposes](scheme)…, ExtraPurposes for each
// candidate application name in turn, and decode the ticket. It reports which application name
// worked and the key's status at now. It does not check the ticket's expiry.
//
// On failure it returns a [*CookieError] wrapping [ErrMalformedPayload] or
// [ErrNewerPayloadVersion] (not a Data Protection payload), a [*KeyNotFoundError] (wrapping
// [ErrKeyNotFound]), [ErrKeyRevoked], the key's descriptor error, [ErrDecryptionFailed] (no
// candidate authenticated) or [ErrMalformedTicket] (decrypted, but not a ticket).
func (r *Ring) DecryptCookie(value string, now time.Time, opts CookieOptions) (*CookieResult, error) {
	scheme := opts.Scheme
	if scheme == "" {
		scheme = DefaultCookieScheme
	}
	appNames := opts.AppNames
	if len(appNames) == 0 {
		appNames = []string{""}
	}
	diag := CookieDiagnosis{AppNames: []string{}, PurposeChains: [][]string{}}
	fail := func(err error, hint string) (*CookieResult, error) {
		diag.Hint = hint
		return nil, &CookieError{Diagnosis: diag, Err: err}
	}

	payload, err := Base64URLDecode(unescapeDataString(value))
	if err != nil {
		return fail(err, "the value is not base64url text (pass the whole cookie value, with its chunks reassembled)")
	}
	id, err := PayloadKeyID(payload)
	if err != nil {
		if errors.Is(err, ErrNewerPayloadVersion) {
			return fail(err, "the payload was written by a newer Data Protection format version")
		}
		return fail(err, "the value is not an ASP.NET Core Data Protection payload (which starts with CfDJ8 in base64url), or it is truncated")
	}
	diag.KeyID = &id
	var k Key
	if r == nil {
		err = &KeyNotFoundError{ID: id}
	} else {
		k, err = r.Key(id)
	}
	if err != nil {
		return fail(err, fmt.Sprintf("key %s is not in this ring: the node that issued the cookie uses another key ring, or a key this ring has not loaded yet", id))
	}
	diag.KeyInRing = true
	diag.KeyStatus = r.Status(k, now)
	if diag.KeyStatus == StatusRevoked {
		return fail(fmt.Errorf("%w: key %s", ErrKeyRevoked, id), fmt.Sprintf(
			"key %s is revoked in this ring, and ASP.NET Core refuses cookies protected with a revoked key: the user must sign in again", id))
	}

	base := append(CookiePurposes(scheme), opts.ExtraPurposes...)
	for _, app := range appNames {
		purposes := Purposes(app, base...)
		diag.AppNames = append(diag.AppNames, app)
		diag.PurposeChains = append(diag.PurposeChains, purposes)
		plaintext, key, err := r.Unprotect(payload, purposes)
		switch {
		case err == nil:
			t, err := ParseTicket(plaintext)
			if err != nil {
				return fail(err, fmt.Sprintf("the cookie decrypted with key %s and application name %q, but the plaintext is not a format-5 authentication ticket", id, app))
			}
			return &CookieResult{KeyID: id, Key: key, KeyStatus: diag.KeyStatus, AppName: app, Purposes: purposes, Ticket: t}, nil
		case errors.Is(err, ErrDecryptionFailed):
			continue
		case errors.Is(err, ErrInvalidPurpose):
			return fail(err, fmt.Sprintf("application name %q or an extra purpose is not valid UTF-8", app))
		default:
			return fail(err, fmt.Sprintf("key %s is in the ring but cannot be used", id))
		}
	}
	return fail(ErrDecryptionFailed, fmt.Sprintf(
		"key %s is in the ring (%s) but the payload did not authenticate with any of the %d purpose chains tried: "+
			"the issuing node most likely uses another application name (SetApplicationName, or its content root path) "+
			"or another scheme, or its copy of key %s has other key material", id, diag.KeyStatus, len(appNames), id))
}

// EncryptCookie serializes t and protects it as the cookie-authentication handler of scheme does
// on an application named appName ("" for none): with [Ring.Protect] (the ring's default key at
// now), the purpose chain [appName,] [CookiePurposes](scheme), base64url. The
// result may need chunking ([ChunkCookie]). It returns an error wrapping [ErrNoDefaultKey] if the
// ring has no key to protect with, or the error of [Ticket.MarshalBinary].
func (r *Ring) EncryptCookie(now time.Time, t *Ticket, appName, scheme string) (string, error) {
	if scheme == "" {
		scheme = DefaultCookieScheme
	}
	plaintext, err := t.MarshalBinary()
	if err != nil {
		return "", err
	}
	payload, err := r.Protect(now, plaintext, Purposes(appName, CookiePurposes(scheme)...))
	if err != nil {
		return "", err
	}
	return Base64URLEncode(payload), nil
}
