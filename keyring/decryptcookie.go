package keyring

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
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
	// The diagnosis is built only on failure, so success costs no bookkeeping.
	f := cookieFailure{scheme: scheme, extra: opts.ExtraPurposes}

	payload, err := Base64URLDecode(unescapeDataString(value))
	if err != nil {
		return nil, f.fail(err, "the value is not base64url text (pass the whole cookie value, with its chunks reassembled)")
	}
	id, err := PayloadKeyID(payload)
	if err != nil {
		if errors.Is(err, ErrNewerPayloadVersion) {
			return nil, f.fail(err, "the payload was written by a newer Data Protection format version")
		}
		return nil, f.fail(err, "the value is not an ASP.NET Core Data Protection payload (which starts with CfDJ8 in base64url), or it is truncated")
	}
	f.id = &id
	var (
		k   Key
		kdf *keyedKDF
	)
	if r == nil {
		err = &KeyNotFoundError{ID: id}
	} else {
		k, kdf, err = r.lookup(id)
	}
	if err != nil {
		return nil, f.fail(err, fmt.Sprintf("key %s is not in this ring: the node that issued the cookie uses another key ring, or a key this ring has not loaded yet", id))
	}
	f.inRing = true
	f.status = r.Status(k, now)
	if f.status == StatusRevoked {
		return nil, f.fail(fmt.Errorf("%w: key %s", ErrKeyRevoked, id), fmt.Sprintf(
			"key %s is revoked in this ring, and ASP.NET Core refuses cookies protected with a revoked key: the user must sign in again", id))
	}

	for i, app := range appNames {
		f.tried = appNames[:i+1]
		purposes := f.purposes(app)
		// This is Ring.Unprotect without the header, key and revocation checks done above. The
		// payload is DecryptCookie's own buffer: it is decrypted in place, and the ticket's
		// strings share its memory.
		plaintext, err := unprotectOwned(k, kdf, payload, purposes)
		switch {
		case err == nil:
			t, err := parseTicketString(unsafe.String(unsafe.SliceData(plaintext), len(plaintext)))
			if err != nil {
				return nil, f.fail(err, fmt.Sprintf("the cookie decrypted with key %s and application name %q, but the plaintext is not a format-5 authentication ticket", id, app))
			}
			return &CookieResult{KeyID: id, Key: k, KeyStatus: f.status, AppName: app, Purposes: purposes, Ticket: t}, nil
		case errors.Is(err, ErrDecryptionFailed):
			continue
		case errors.Is(err, ErrInvalidPurpose):
			return nil, f.fail(err, fmt.Sprintf("application name %q or an extra purpose is not valid UTF-8", app))
		default:
			return nil, f.fail(err, fmt.Sprintf("key %s is in the ring but cannot be used", id))
		}
	}
	return nil, f.fail(ErrDecryptionFailed, fmt.Sprintf(
		"key %s is in the ring (%s) but the payload did not authenticate with any of the %d purpose chains tried: "+
			"the issuing node most likely uses another application name (SetApplicationName, or its content root path) "+
			"or another scheme, or its copy of key %s has other key material", id, f.status, len(appNames), id))
}

// unprotectOwned decrypts payload, whose header names k, for purposes, deriving keys with kdf,
// as [Ring.Unprotect] does once the key is found, not revoked and has a descriptor. The caller
// must own payload: a CBC payload is decrypted in place once its MAC checks (a failed MAC leaves
// it unchanged, so the next candidate purpose chain sees the same bytes), and the plaintext is a
// subslice of it that nothing else may modify. A payload whose MAC checks but whose padding does
// not is left decrypted; the next candidates then fail their MAC check, as they would have
// anyway (their keys differ), and DecryptCookie reports ErrDecryptionFailed as before.
func unprotectOwned(k Key, kdf *keyedKDF, payload []byte, purposes []string) ([]byte, error) {
	if k.Descriptor == nil {
		return nil, unusableKeyError(k)
	}
	aad, err := AAD(k.ID, purposes)
	if err != nil {
		return nil, err
	}
	return k.Descriptor.decrypt(kdf, payload[headerSize:], aad, true)
}

// cookieFailure collects what DecryptCookie learnt, to build a [CookieError] when it fails.
type cookieFailure struct {
	scheme string
	extra  []string
	id     *KeyID
	inRing bool
	status Status
	tried  []string // application names tried so far
}

// purposes returns the purpose chain for one application name.
func (f *cookieFailure) purposes(app string) []string {
	p := make([]string, 0, 4+len(f.extra))
	if app != "" {
		p = append(p, app)
	}
	p = append(p, CookieAuthenticationPurpose, f.scheme, "v2")
	return append(p, f.extra...)
}

func (f *cookieFailure) fail(err error, hint string) error {
	d := CookieDiagnosis{
		KeyID:         f.id,
		KeyInRing:     f.inRing,
		KeyStatus:     f.status,
		AppNames:      append([]string{}, f.tried...),
		PurposeChains: make([][]string, 0, len(f.tried)),
		Hint:          hint,
	}
	for _, app := range f.tried {
		d.PurposeChains = append(d.PurposeChains, f.purposes(app))
	}
	return &CookieError{Diagnosis: d, Err: err}
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
