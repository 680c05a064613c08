package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dpkeyring/dpkeyring/internal/audit"
	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/go-chi/chi/v5"
)

const (
	// maxReasonLen caps the reason of rotations and revocations (in bytes).
	maxReasonLen = 1024
	// writeTimeout bounds a write; it runs on even if the client goes away, so a rotation is
	// never cut between the key and its metadata.
	writeTimeout = 60 * time.Second
)

// rotateRequest is the body of POST /v1/rings/{ring}/rotate (optional).
type rotateRequest struct {
	Immediate      bool   `json:"immediate"`
	RevokePrevious bool   `json:"revoke_previous"`
	Reason         string `json:"reason"`
}

// revokeRequest is the body of both revoke endpoints.
type revokeRequest struct {
	Before time.Time `json:"before"`
	Reason string    `json:"reason"`
}

// revokeResponse is the answer of both revoke endpoints.
type revokeResponse struct {
	// Result is "revoked" or "already revoked".
	Result string `json:"result"`
	// KeyID is the revoked key, or "*" for a revocation by date.
	KeyID string `json:"key_id"`
	// Revoked are the ids of the keys this call revoked that were not revoked before.
	Revoked []string `json:"revoked"`
	// Version is the ring version after the call.
	Version uint64 `json:"version"`
}

func checkReason(reason string, required bool) error {
	switch {
	case required && reason == "":
		return errorf(http.StatusBadRequest, codeBadRequest, "a reason is required")
	case len(reason) > maxReasonLen:
		return errorf(http.StatusBadRequest, codeBadRequest, "the reason is longer than %d bytes", maxReasonLen)
	case !utf8.ValidString(reason):
		return errorf(http.StatusBadRequest, codeBadRequest, "the reason is not valid UTF-8")
	}
	for _, c := range reason {
		if unicode.IsControl(c) && c != '\t' {
			return errorf(http.StatusBadRequest, codeBadRequest, "the reason must not contain control characters")
		}
	}
	return nil
}

// writer returns ring's writer.
func (h *handler) writer(ring string) (RingWriter, error) {
	if h.cfg.Writers == nil {
		return nil, errorf(http.StatusServiceUnavailable, codeStoreUnavailable, "this server does not write rings")
	}
	return h.cfg.Writers.Writer(ring)
}

// writeContext returns the context for a write: not canceled when the client goes away, with
// a timeout.
func writeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), writeTimeout)
}

// audit records e (with the caller, request id and time) if an auditor is configured.
func (h *handler) audit(r *http.Request, p Principal, e audit.Event) {
	if h.cfg.Auditor == nil {
		return
	}
	e.Time, e.Role, e.TokenName = h.cfg.Now(), p.Role.String(), p.Name
	e.RequestID, e.RemoteAddr = requestIDFrom(r.Context()), r.RemoteAddr
	h.cfg.Auditor.Record(context.WithoutCancel(r.Context()), e)
}

// auditDenied records a write refused for the token's role or rings.
func (h *handler) auditDenied(r *http.Request, p Principal, action string, err error) {
	if he := toHTTPError(err); he.Status == http.StatusForbidden && p.Name != "" {
		h.audit(r, p, audit.Event{Action: action, Ring: chi.URLParam(r, "ring"), Result: audit.ResultDenied, Error: he.Msg})
	}
}

// afterWrite re-reads the ring so the new version is served (and long-pollers wake) before the
// answer goes out. A failure only delays that to the next refresh, so it is logged, not
// returned.
func (h *handler) afterWrite(ctx context.Context, r *http.Request, ring string) {
	if err := h.cfg.Cache.Invalidate(ctx, ring); err != nil {
		h.log.LogAttrs(ctx, slog.LevelWarn, "refresh after write failed",
			slog.String("request_id", requestIDFrom(r.Context())),
			slog.String("ring", ring), slog.Any("error", err))
	}
}

// rotate answers POST /v1/rings/{ring}/rotate (admin): apply the policy, or an immediate
// (emergency) rotation. Idempotent: "not due" writes nothing.
func (h *handler) rotate(w http.ResponseWriter, r *http.Request) error {
	ring, p, err := h.ringParam(r, RoleAdmin)
	if err != nil {
		h.auditDenied(r, p, audit.ActionRotate, err)
		return err
	}
	var req rotateRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if req.RevokePrevious && !req.Immediate {
		return errorf(http.StatusBadRequest, codeBadRequest,
			"revoke_previous requires immediate: revoking the current keys before their successor activates would leave the ring without a default key")
	}
	if err := checkReason(req.Reason, req.RevokePrevious); err != nil {
		return err
	}
	wr, err := h.writer(ring)
	if err != nil {
		return err
	}
	ctx, cancel := writeContext(r)
	defer cancel()
	res, err := wr.Rotate(ctx, rotation.Request{Immediate: req.Immediate, RevokePrevious: req.RevokePrevious, Reason: req.Reason})
	if err != nil {
		h.audit(r, p, audit.Event{Action: audit.ActionRotate, Ring: ring, Reason: req.Reason, Result: audit.ResultFailed, Error: err.Error()})
		if res.Created {
			// The key was written but a later step failed: serve it anyway.
			h.afterWrite(ctx, r, ring)
		}
		return err
	}
	if res.Created {
		h.afterWrite(ctx, r, ring)
	}
	out := res.Summary()
	ev := audit.Event{Action: audit.ActionRotate, Ring: ring, Reason: req.Reason, Result: audit.ResultNotDue, Revoked: out.Revoked}
	if res.Created {
		ev.KeyID, ev.Result = out.KeyID, audit.ResultCreated
	}
	h.audit(r, p, ev)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revokeKey answers POST /v1/rings/{ring}/keys/{id}/revoke (admin).
func (h *handler) revokeKey(w http.ResponseWriter, r *http.Request) error {
	ring, p, err := h.ringParam(r, RoleAdmin)
	if err != nil {
		h.auditDenied(r, p, audit.ActionRevoke, err)
		return err
	}
	id, err := keyring.ParseKeyID(chi.URLParam(r, "id"))
	if err != nil {
		return errorf(http.StatusBadRequest, codeBadRequest, "the key id must be a GUID such as 3d6d01fd-c0e7-44ae-82dd-013b996b4093")
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if err := checkReason(req.Reason, true); err != nil {
		return err
	}
	return h.revoke(w, r, ring, p, keyring.Revocation{Date: h.cfg.Now(), KeyID: id, Reason: req.Reason})
}

// revokeBefore answers POST /v1/rings/{ring}/revoke (admin): revoke every key created before a
// date.
func (h *handler) revokeBefore(w http.ResponseWriter, r *http.Request) error {
	ring, p, err := h.ringParam(r, RoleAdmin)
	if err != nil {
		h.auditDenied(r, p, audit.ActionRevoke, err)
		return err
	}
	var req revokeRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	now := h.cfg.Now()
	switch {
	case req.Before.IsZero():
		return errorf(http.StatusBadRequest, codeBadRequest, "before (an RFC 3339 date) is required")
	case req.Before.After(now):
		return errorf(http.StatusBadRequest, codeBadRequest, "before must not be in the future")
	}
	if err := checkReason(req.Reason, true); err != nil {
		return err
	}
	return h.revoke(w, r, ring, p, keyring.Revocation{Date: req.Before.UTC(), All: true, Reason: req.Reason})
}

// revoke checks rev against the served ring and writes it: a key not in the ring is 404, a key
// already revoked answers "already revoked" without writing, and a revocation that would leave
// the ring without a default key now is refused (409 would_leave_no_default_key; rotate with
// immediate and revoke_previous instead).
func (h *handler) revoke(w http.ResponseWriter, r *http.Request, ring string, p Principal, rev keyring.Revocation) error {
	e, err := h.cfg.Cache.Get(ring)
	if err != nil {
		return err
	}
	now := h.cfg.Now()
	keyID := "*"
	if !rev.All {
		keyID = rev.KeyID.String()
		k, err := e.Keys.Key(rev.KeyID)
		if err != nil {
			return errorf(http.StatusNotFound, codeKeyNotFound, "key %s is not in ring %q", rev.KeyID, ring)
		}
		if e.Keys.IsRevoked(k) {
			writeJSON(w, http.StatusOK, revokeResponse{Result: "already revoked", KeyID: keyID, Revoked: []string{}, Version: e.Version})
			return nil
		}
	}
	after, err := keyring.NewRing(e.Keys.Keys(), append(e.Keys.Revocations(), rev), e.Keys.Skipped())
	if err != nil {
		return err
	}
	if e.Keys.ResolveDefaultKey(now).Default != nil && after.ResolveDefaultKey(now).Default == nil {
		return errorf(http.StatusConflict, codeWouldLeaveNoKey,
			"this revocation would leave ring %q without a default key, and ASP.NET Core nodes would create keys of their own: "+
				"rotate with {\"immediate\": true, \"revoke_previous\": true} instead", ring)
	}
	var newly []string
	for _, k := range e.Keys.Keys() {
		if !e.Keys.IsRevoked(k) && after.IsRevoked(k) {
			newly = append(newly, k.ID.String())
		}
	}
	if newly == nil {
		newly = []string{}
	}
	wr, err := h.writer(ring)
	if err != nil {
		return err
	}
	ctx, cancel := writeContext(r)
	defer cancel()
	version, err := wr.Revoke(ctx, rev)
	if err != nil {
		h.audit(r, p, audit.Event{Action: audit.ActionRevoke, Ring: ring, KeyID: keyID, Reason: rev.Reason, Result: audit.ResultFailed, Error: err.Error()})
		return err
	}
	h.afterWrite(ctx, r, ring)
	h.audit(r, p, audit.Event{Action: audit.ActionRevoke, Ring: ring, KeyID: keyID, Revoked: newly, Reason: rev.Reason, Result: audit.ResultOK})
	writeJSON(w, http.StatusOK, revokeResponse{Result: "revoked", KeyID: keyID, Revoked: newly, Version: version})
	return nil
}
