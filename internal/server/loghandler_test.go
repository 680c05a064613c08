package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"testing"
	"time"
)

// TestLogHandlerMatchesJSONHandler checks that every record comes out byte for byte as
// slog.NewJSONHandler writes it, on the fast path and on the fallback.
func TestLogHandlerMatchesJSONHandler(t *testing.T) {
	at := time.Date(2026, 11, 24, 5, 6, 7, 890123000, time.UTC)
	records := []struct {
		name  string
		fast  bool // whether the fast path should take it
		msg   string
		level slog.Level
		time  time.Time
		attrs []slog.Attr
	}{
		{"access log", true, "request", slog.LevelInfo, at, []slog.Attr{
			slog.String("request_id", "host/AbC-_x-000042"), slog.String("method", "GET"),
			slog.String("path", "/v1/rings/default/keys"), slog.String("route", "/v1/rings/{ring}/keys"),
			slog.Int("status", 200), slog.Int("bytes", 8930), slog.Float64("duration_ms", 0.123),
			slog.String("remote", "127.0.0.1:54321"), slog.String("token_name", "node"), slog.String("role", "node")}},
		{"no attrs", true, "listening", slog.LevelWarn, at, nil},
		{"zero time", true, "x", slog.LevelError, time.Time{}, []slog.Attr{slog.Bool("b", true)}},
		{"local time", true, "x", slog.LevelDebug, at.In(time.FixedZone("X", 3600)), nil},
		{"level offset", true, "x", slog.LevelInfo + 2, at, nil},
		{"numbers", true, "n", slog.LevelInfo, at, []slog.Attr{
			slog.Int64("neg", -42), slog.Uint64("u", math.MaxUint64), slog.Duration("d", 1500*time.Millisecond),
			slog.Float64("f0", 0), slog.Float64("f1", 1), slog.Float64("f2", 123456.789), slog.Float64("f3", 1e-6),
			slog.Float64("f4", 1e20), slog.Float64("f5", -0.5)}},
		{"empty attr dropped", true, "x", slog.LevelInfo, at, []slog.Attr{{}, slog.String("k", "v")}},
		{"float exponent", false, "x", slog.LevelInfo, at, []slog.Attr{slog.Float64("f", 1e21)}},
		{"float small", false, "x", slog.LevelInfo, at, []slog.Attr{slog.Float64("f", 1e-7)}},
		{"float nan", false, "x", slog.LevelInfo, at, []slog.Attr{slog.Float64("f", math.NaN())}},
		{"negative zero", false, "x", slog.LevelInfo, at, []slog.Attr{slog.Float64("f", math.Copysign(0, -1))}},
		{"escaped message", false, "a \"quoted\"\nline", slog.LevelInfo, at, nil},
		{"escaped value", false, "x", slog.LevelInfo, at, []slog.Attr{slog.String("path", "/a\\b")}},
		{"unicode value", false, "x", slog.LevelInfo, at, []slog.Attr{slog.String("node", "nœud\u2028")}},
		{"escaped key", false, "x", slog.LevelInfo, at, []slog.Attr{slog.String("k\"", "v")}},
		{"error", false, "x", slog.LevelError, at, []slog.Attr{slog.Any("error", errors.New("boom <&>"))}},
		{"time attr", false, "x", slog.LevelInfo, at, []slog.Attr{slog.Time("t", at)}},
		{"group", false, "x", slog.LevelInfo, at, []slog.Attr{slog.Group("g", slog.Int("a", 1))}},
		{"any", false, "x", slog.LevelInfo, at, []slog.Attr{slog.Any("rings", []string{"a", "b"})}},
		{"year 10000", false, "x", slog.LevelInfo, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), nil},
	}
	for _, rc := range records {
		t.Run(rc.name, func(t *testing.T) {
			r := slog.NewRecord(rc.time, rc.level, rc.msg, 0)
			r.AddAttrs(rc.attrs...)
			var want, got bytes.Buffer
			_ = slog.NewJSONHandler(&want, &slog.HandlerOptions{Level: slog.LevelDebug}).Handle(context.Background(), r.Clone())
			_ = NewLogHandler(&got).Handle(context.Background(), r.Clone())
			if got.String() != want.String() {
				t.Errorf("got  %s\nwant %s", got.String(), want.String())
			}
			if _, fast := appendFastRecord(nil, r.Clone()); fast != rc.fast {
				t.Errorf("fast path taken = %v, want %v", fast, rc.fast)
			}
		})
	}
}

// TestLogHandlerWithAttrs checks loggers made with With and WithGroup, and level filtering.
func TestLogHandlerWithAttrs(t *testing.T) {
	var want, got bytes.Buffer
	for _, l := range []*slog.Logger{slog.New(slog.NewJSONHandler(&want, nil)), slog.New(NewLogHandler(&got))} {
		l.With("ring", "default").WithGroup("g").Info("m", "a", 1)
		l.Debug("not logged")
		l.Info("plain", "k", "v")
	}
	// Times differ between the two loggers: compare without them.
	strip := func(b []byte) string {
		var out []byte
		for line := range bytes.Lines(b) {
			if i := bytes.Index(line, []byte(`"level"`)); i > 0 {
				line = line[i:]
			}
			out = append(out, line...)
		}
		return string(out)
	}
	if strip(got.Bytes()) != strip(want.Bytes()) {
		t.Errorf("got\n%s\nwant\n%s", got.String(), want.String())
	}
}

func FuzzLogHandler(f *testing.F) {
	f.Add("request", "k", "/v1/rings/default/keys", int64(200), 0.123)
	f.Add("a\"b", "k\n", "\xff", int64(-1), 1e-9)
	f.Fuzz(func(t *testing.T, msg, key, val string, n int64, x float64) {
		r := slog.NewRecord(time.Unix(0, n).UTC(), slog.LevelInfo, msg, 0)
		r.AddAttrs(slog.String(key, val), slog.Int64("n", n), slog.Float64("x", x))
		var want, got bytes.Buffer
		_ = slog.NewJSONHandler(&want, nil).Handle(context.Background(), r.Clone())
		_ = NewLogHandler(&got).Handle(context.Background(), r.Clone())
		if got.String() != want.String() {
			t.Errorf("got  %s\nwant %s", got.String(), want.String())
		}
	})
}
