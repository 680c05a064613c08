package server

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
)

// NewLogHandler returns the server's slog handler: the output of slog.NewJSONHandler(w, nil),
// byte for byte, written faster for the common records (the access log line: a message and
// flat string, integer, float, bool and duration attributes of plain ASCII). Any other record,
// and every logger made with With or WithGroup, goes through slog's own JSON handler on w.
func NewLogHandler(w io.Writer) slog.Handler {
	return &fastJSONHandler{std: slog.NewJSONHandler(w, nil), w: w}
}

type fastJSONHandler struct {
	std slog.Handler
	mu  sync.Mutex // serializes writes to w, as slog's handler does
	w   io.Writer
}

var logBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *fastJSONHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.std.Enabled(ctx, l)
}

func (h *fastJSONHandler) WithAttrs(as []slog.Attr) slog.Handler { return h.std.WithAttrs(as) }

func (h *fastJSONHandler) WithGroup(name string) slog.Handler { return h.std.WithGroup(name) }

func (h *fastJSONHandler) Handle(ctx context.Context, r slog.Record) error {
	bp := logBufPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 64<<10 {
			logBufPool.Put(bp)
		}
	}()
	b, ok := appendFastRecord((*bp)[:0], r)
	*bp = b
	if !ok {
		return h.std.Handle(ctx, r)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(b)
	return err
}

// appendFastRecord appends r as slog's JSON handler writes it, or returns false when r has
// anything it does not handle the same way.
func appendFastRecord(b []byte, r slog.Record) ([]byte, bool) {
	b = append(b, '{')
	if !r.Time.IsZero() {
		t := r.Time.Round(0)
		if y := t.Year(); y < 0 || y >= 10000 {
			return b, false
		}
		b = append(b, `"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":"`...)
	b = append(b, r.Level.String()...)
	b = append(b, `","msg":`...)
	var ok bool
	if b, ok = appendPlainString(b, r.Message); !ok {
		return b, false
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Equal(slog.Attr{}) {
			return true // slog drops empty attributes
		}
		b = append(b, ',')
		if b, ok = appendPlainString(b, a.Key); !ok {
			return false
		}
		b = append(b, ':')
		v := a.Value
		switch v.Kind() {
		case slog.KindString:
			b, ok = appendPlainString(b, v.String())
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindUint64:
			b = strconv.AppendUint(b, v.Uint64(), 10)
		case slog.KindBool:
			b = strconv.AppendBool(b, v.Bool())
		case slog.KindDuration:
			b = strconv.AppendInt(b, int64(v.Duration()), 10)
		case slog.KindFloat64:
			// encoding/json's form ('f' without exponent) in the range where it uses it.
			f := v.Float64()
			if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) || abs == 0 && math.Signbit(f) || math.IsNaN(f) || math.IsInf(f, 0) {
				ok = false
				return false
			}
			b = strconv.AppendFloat(b, f, 'f', -1, 64)
		default:
			ok = false
		}
		return ok
	})
	if !ok {
		return b, false
	}
	return append(b, "}\n"...), true
}

// appendPlainString appends s quoted when it needs no JSON escaping (printable ASCII without
// quote and backslash); otherwise it reports false.
func appendPlainString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}
