package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/dpkeyring/dpkeyring/internal/tokens"
)

// Principal is the identity behind a valid token: the stored token (name, role, rings; never
// the token itself). A token with no rings is granted every ring.
type Principal = tokens.Token

// Roles, as stored in the token file.
const (
	RoleNode  = tokens.RoleNode
	RoleAdmin = tokens.RoleAdmin
	RoleDebug = tokens.RoleDebug
)

// Role is what a token may do.
type Role = tokens.Role

// principalFrom returns the request's principal, set by [handler.authenticate].
func principalFrom(ctx context.Context) (Principal, bool) {
	st := reqStateFrom(ctx)
	if st == nil || !st.authed {
		return Principal{}, false
	}
	return st.principal, true
}

// bearerToken returns the token of an "Authorization: Bearer TOKEN" header.
func bearerToken(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// authenticate answers 401 unauthorized unless the request carries a valid bearer token, and
// puts the principal in the context (and its name in the access log).
func (h *handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok {
			h.writeError(w, r, errorf(http.StatusUnauthorized, codeUnauthorized, "a bearer token is required (Authorization: Bearer TOKEN)"))
			return
		}
		p, ok := h.cfg.Auth.Authenticate(token)
		if !ok || p.Role == tokens.RoleUnknown {
			h.writeError(w, r, errorf(http.StatusUnauthorized, codeUnauthorized, "the bearer token is not valid"))
			return
		}
		st := reqStateFrom(r.Context())
		if st == nil { // outside accessLog (not mounted that way): keep the principal anyway
			st = &reqState{}
			r = r.WithContext(context.WithValue(r.Context(), reqStateKey{}, st))
		}
		st.principal, st.authed = p, true
		next.ServeHTTP(w, r)
	})
}

// authorize returns the principal if its role is one of roles and it is granted ring ("" for
// no ring), else a 403 forbidden error.
func authorize(r *http.Request, ring string, roles ...Role) (Principal, error) {
	p, ok := principalFrom(r.Context())
	if !ok {
		return Principal{}, errorf(http.StatusUnauthorized, codeUnauthorized, "a bearer token is required (Authorization: Bearer TOKEN)")
	}
	if !slices.Contains(roles, p.Role) {
		names := make([]string, len(roles))
		for i, role := range roles {
			names[i] = role.String()
		}
		return p, errorf(http.StatusForbidden, codeForbidden, "this needs the %s role; the token has role %s", strings.Join(names, " or "), p.Role)
	}
	if ring != "" && !p.AllowsRing(ring) {
		return p, errorf(http.StatusForbidden, codeForbidden, "the token is not granted ring %q", ring)
	}
	return p, nil
}
