package server

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter records every Write call separately.
type countingWriter struct {
	mu     sync.Mutex
	writes [][]byte
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *countingWriter) snapshot() (calls int, all string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, w := range c.writes {
		b.Write(w)
	}
	return len(c.writes), b.String()
}

func TestLogWriterBatchesAndKeepsEveryLine(t *testing.T) {
	cw := &countingWriter{}
	lw := NewLogWriter(cw, time.Hour) // only Close flushes here
	logger := slog.New(slog.NewJSONHandler(lw, nil))
	const n = 1000
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range n / 4 {
				logger.Info("request", "request_id", fmt.Sprintf("g%d-%d", g, i))
			}
		})
	}
	wg.Wait()
	if calls, _ := cw.snapshot(); calls >= n/10 {
		t.Errorf("%d writes for %d lines before Close: not batched", calls, n)
	}
	if err := lw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, all := cw.snapshot()
	lines := strings.Split(strings.TrimSuffix(all, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("got %d lines after Close, want %d", len(lines), n)
	}
	for g := range 4 {
		for i := range n / 4 {
			if !strings.Contains(all, fmt.Sprintf(`"request_id":"g%d-%d"`, g, i)) {
				t.Fatalf("line g%d-%d lost", g, i)
			}
		}
	}
	// Every underlying write holds whole lines.
	cw.mu.Lock()
	for _, w := range cw.writes {
		if !bytes.HasSuffix(w, []byte("\n")) {
			t.Errorf("a write ends inside a line: %q", w[max(0, len(w)-40):])
		}
	}
	cw.mu.Unlock()
	// After Close, writes go straight through.
	logger.Info("after close")
	if _, all := cw.snapshot(); !strings.Contains(all, "after close") {
		t.Error("a line written after Close was not written")
	}
}

func TestLogWriterFlushesOnInterval(t *testing.T) {
	cw := &countingWriter{}
	lw := NewLogWriter(cw, 20*time.Millisecond)
	defer lw.Close()
	if _, err := io.WriteString(lw, "one\n"); err != nil {
		t.Fatal(err)
	}
	if _, all := cw.snapshot(); all != "" {
		t.Fatalf("written before the interval: %q", all)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, all := cw.snapshot(); all == "one\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the buffered line was not flushed by the timer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The timer re-arms for the next line.
	_, _ = io.WriteString(lw, "two\n")
	for {
		if _, all := cw.snapshot(); all == "one\ntwo\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second line was not flushed by the timer")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLogWriterFullBufferAndLargeLines(t *testing.T) {
	cw := &countingWriter{}
	lw := NewLogWriter(cw, time.Hour)
	line := strings.Repeat("x", 1000) + "\n"
	for range 100 { // 100 KB > the 64 KiB buffer
		_, _ = io.WriteString(lw, line)
	}
	calls, all := cw.snapshot()
	if calls != 1 || len(all)%len(line) != 0 {
		t.Errorf("after overflowing the buffer: %d writes of %d bytes, want 1 of whole lines", calls, len(all))
	}
	big := strings.Repeat("y", LogBufferSize+10) + "\n"
	_, _ = io.WriteString(lw, big)
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	_, all = cw.snapshot()
	if want := strings.Repeat(line, 100) + big; all != want {
		t.Errorf("got %d bytes, want %d in order", len(all), len(want))
	}
}

// BenchmarkAccessLog measures one access log record (the fields httpapi logs) through the slog
// JSON handler to a file-like writer: unbuffered (one write per line, as before), through
// LogWriter, and through LogWriter with the server's NewLogHandler.
func BenchmarkAccessLog(b *testing.B) {
	for _, bc := range []struct {
		name    string
		wrap    func(io.Writer) io.Writer
		handler func(io.Writer) slog.Handler
	}{
		{"direct", func(w io.Writer) io.Writer { return w }, nil},
		{"buffered", func(w io.Writer) io.Writer { return NewLogWriter(w, 0) }, nil},
		{"buffered-fast", func(w io.Writer) io.Writer { return NewLogWriter(w, 0) }, NewLogHandler},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f, err := openDevNull()
			if err != nil {
				b.Skip(err)
			}
			defer f.Close()
			w := bc.wrap(f)
			logger := slog.New(slog.NewJSONHandler(w, nil))
			if bc.handler != nil {
				logger = slog.New(bc.handler(w))
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					logger.LogAttrs(b.Context(), slog.LevelInfo, "request",
						slog.String("request_id", "host/abcdef-000123"), slog.String("method", "GET"),
						slog.String("path", "/v1/rings/default/keys"), slog.String("route", "/v1/rings/{ring}/keys"),
						slog.Int("status", 200), slog.Int("bytes", 8930), slog.Float64("duration_ms", 0.123),
						slog.String("remote", "127.0.0.1:54321"), slog.String("token_name", "node-1"), slog.String("role", "node"))
				}
			})
			if c, ok := w.(io.Closer); ok {
				_ = c.Close()
			}
		})
	}
}

func openDevNull() (io.WriteCloser, error) { return os.OpenFile(os.DevNull, os.O_WRONLY, 0) }
