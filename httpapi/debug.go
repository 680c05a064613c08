package httpapi

import (
	"errors"
	"net/http"
	"net/netip"

	"github.com/dpkeyring/dpkeyring/internal/audit"
	"github.com/dpkeyring/dpkeyring/internal/cookiejson"
	"github.com/dpkeyring/dpkeyring/keyring"
)

// decryptCookieRequest is the body of POST /v1/rings/{ring}/debug/decrypt-cookie. Exactly one
// of Value and CookieHeader is required.
type decryptCookieRequest struct {
	// Value is the cookie value, chunks already reassembled.
	Value string `json:"value"`
	// CookieHeader is a whole Cookie request header; the cookie (and its chunks) is taken from
	// it by CookieName, or the default name of the scheme.
	CookieHeader string `json:"cookie_header"`
	// CookieName names the cookie in CookieHeader; default ".AspNetCore."+scheme, or
	// UMB_UCONTEXT with Umbraco.
	CookieName string `json:"cookie_name"`
	// Scheme is the authentication scheme; default "Cookies".
	Scheme string `json:"scheme"`
	// Umbraco selects the Umbraco backoffice scheme and cookie name.
	Umbraco bool `json:"umbraco"`
	// AppNames are the application names to try; default the ring's configured names, else
	// none ("").
	AppNames []string `json:"app_names"`
	// Purposes are extra purposes appended to the chain (rarely needed).
	Purposes []string `json:"purposes"`
}

// debugOnly lets through only requests from a loopback address that carry no proxy headers
// (403 forbidden otherwise): the debug endpoint is for an operator on the server's host.
func (h *handler) debugOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, hdr := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Forwarded-Host"} {
			if r.Header.Get(hdr) != "" {
				h.writeError(w, r, errorf(http.StatusForbidden, codeForbidden,
					"the debug endpoint refuses proxied requests (%s is set): call it on the server's loopback address", hdr))
				return
			}
		}
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			h.writeError(w, r, errorf(http.StatusForbidden, codeForbidden,
				"the debug endpoint only answers on a loopback address"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// decryptCookie answers POST /v1/rings/{ring}/debug/decrypt-cookie (debug role): the cookie's
// ticket, or a diagnosis of why the ring cannot decrypt it (422 decrypt_failed, the diagnosis
// document in the body). It never logs the cookie or its claims.
func (h *handler) decryptCookie(w http.ResponseWriter, r *http.Request) error {
	ring, p, err := h.ringParam(r, RoleDebug)
	if err != nil {
		h.auditDenied(r, p, audit.ActionDecrypt, err)
		return err
	}
	if !h.debug.Allow() {
		return errorf(http.StatusTooManyRequests, codeRateLimited, "too many debug requests: retry in a second")
	}
	var req decryptCookieRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	switch {
	case (req.Value == "") == (req.CookieHeader == ""):
		return errorf(http.StatusBadRequest, codeBadRequest, "give exactly one of value and cookie_header")
	case req.Umbraco && req.Scheme != "":
		return errorf(http.StatusBadRequest, codeBadRequest, "umbraco and scheme cannot be used together")
	case req.CookieName != "" && req.CookieHeader == "":
		return errorf(http.StatusBadRequest, codeBadRequest, "cookie_name only applies to cookie_header")
	}
	scheme, name := req.Scheme, req.CookieName
	if scheme == "" {
		scheme = keyring.DefaultCookieScheme
	}
	if req.Umbraco {
		scheme = keyring.UmbracoScheme
		if name == "" {
			name = keyring.UmbracoCookieName
		}
	}
	if name == "" {
		name = keyring.CookieName(scheme)
	}
	appNames := req.AppNames
	if len(appNames) == 0 {
		appNames = h.rings[ring].AppNames
	}
	e, err := h.cfg.Cache.Get(ring)
	if err != nil {
		return err
	}
	value := req.Value
	var derr error
	var res *keyring.CookieResult
	if req.CookieHeader != "" {
		value, derr = keyring.ReassembleCookie(name, keyring.LookupCookies(keyring.ParseCookieHeader(req.CookieHeader)))
	}
	if derr == nil {
		res, derr = e.Keys.DecryptCookie(value, h.cfg.Now(), keyring.CookieOptions{
			Scheme: scheme, AppNames: appNames, ExtraPurposes: req.Purposes})
	}
	ev := audit.Event{Action: audit.ActionDecrypt, Ring: ring, Result: audit.ResultOK}
	w.Header().Set("Cache-Control", "no-store")
	h.setStale(w, ring)
	if derr != nil {
		ev.Result, ev.Error = audit.ResultNoMatch, derr.Error()
		var ce *keyring.CookieError
		if errors.As(derr, &ce) && ce.Diagnosis.KeyID != nil {
			ev.KeyID = ce.Diagnosis.KeyID.String()
		}
		h.audit(r, p, ev)
		writeJSON(w, http.StatusUnprocessableEntity, cookiejson.NewFailure(derr))
		return nil
	}
	ev.KeyID = res.KeyID.String()
	h.audit(r, p, ev)
	b, err := cookiejson.Marshal(res)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}
