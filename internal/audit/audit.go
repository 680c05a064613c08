// Package audit writes the server's audit log: one JSON object per line (slog's JSON handler)
// for every rotate, revoke, decrypt, import and token change, appended to a file opened with
// O_APPEND and mode 0600 and synced to disk after every record.
//
// A record says who (role and token name), what (action, ring, key id, reason) and how it ended
// (result, and the error text on failure). It never holds token, key or cookie material: [Event]
// has no field for them, and callers must not put secrets into Reason or Error.
//
// An example line:
//
//	{"time":"2026-11-24T04:00:00Z","level":"INFO","msg":"audit","action":"rotate","role":"admin","token_name":"cron","ring":"default","key_id":"3d6d01fd-…","reason":"scheduled","result":"created"}
package audit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Actions.
const (
	ActionRotate      = "rotate"
	ActionRevoke      = "revoke"
	ActionDecrypt     = "decrypt"
	ActionImport      = "import"
	ActionTokenCreate = "token-create"
	ActionTokenRevoke = "token-revoke"
)

// Results.
const (
	ResultCreated = "created"  // rotate: a key was created
	ResultNotDue  = "not due"  // rotate: no key was due
	ResultOK      = "ok"       // any other success
	ResultDenied  = "denied"   // authenticated but not allowed
	ResultFailed  = "failed"   // the operation failed (Error says why)
	ResultNoMatch = "no_match" // decrypt: the cookie did not decrypt
)

// Event is one audit record. Empty fields are left out of the line.
type Event struct {
	// Time is when it happened; zero means when recorded.
	Time time.Time
	// Action is one of the Action constants.
	Action string
	// Role and TokenName say who: the token's role and name ("scheduler" for the built-in
	// scheduler, "cli" for a direct store rotation).
	Role      string
	TokenName string
	// Ring is the ring acted on.
	Ring string
	// KeyID is the key created, revoked or used to decrypt.
	KeyID string
	// Revoked lists further key ids revoked by the action (rotate --revoke-previous).
	Revoked []string
	// Reason is the operator's reason.
	Reason string
	// Result is one of the Result constants.
	Result string
	// Error is the failure, without secrets.
	Error string
	// RequestID and RemoteAddr tie the record to the access log.
	RequestID  string
	RemoteAddr string
}

// Log is an open audit log. It is safe for concurrent use.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	f      *os.File // nil when writing to a plain writer
	logger *slog.Logger
	now    func() time.Time
	err    error // the error of the last Record
}

// Open opens (creating it with mode 0600, and its directory with 0700) the audit log file at
// path for appending.
func Open(path string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := New(f)
	l.f = f
	return l, nil
}

// New returns a Log writing to w (tests, or stderr).
func New(w io.Writer) *Log {
	l := &Log{w: w, now: time.Now}
	l.logger = slog.New(slog.NewJSONHandler(syncWriter{l}, nil))
	return l
}

// syncWriter writes one record and syncs the file; slog's handler makes one Write per record.
type syncWriter struct{ l *Log }

func (s syncWriter) Write(p []byte) (int, error) {
	n, err := s.l.w.Write(p)
	if err == nil && s.l.f != nil {
		err = s.l.f.Sync()
	}
	if err != nil {
		s.l.err = err
	}
	return n, err
}

// Record appends e to the log. A write failure is kept and returned by [Log.Err] until the next
// Record: the action itself has happened and must not be undone by it.
func (l *Log) Record(ctx context.Context, e Event) {
	t := e.Time
	if t.IsZero() {
		t = l.now()
	}
	attrs := make([]slog.Attr, 0, 12)
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("action", e.Action)
	add("role", e.Role)
	add("token_name", e.TokenName)
	add("ring", e.Ring)
	add("key_id", e.KeyID)
	if len(e.Revoked) > 0 {
		attrs = append(attrs, slog.Any("revoked", e.Revoked))
	}
	add("reason", e.Reason)
	add("result", e.Result)
	add("error", e.Error)
	add("request_id", e.RequestID)
	add("remote_addr", e.RemoteAddr)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = nil
	r := slog.NewRecord(t.UTC(), slog.LevelInfo, "audit", 0)
	r.AddAttrs(attrs...)
	_ = l.logger.Handler().Handle(context.WithoutCancel(ctx), r)
}

// Err returns the error of the last Record, or nil.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Close closes the file.
func (l *Log) Close() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}
