package server

import (
	"io"
	"sync"
	"time"
)

// LogWriter buffers log lines in memory and writes them to an underlying writer (stderr) in
// batches: at most every flush interval after the first buffered line, when the buffer would
// grow past its size, on [LogWriter.Flush] and on [LogWriter.Close]. One write(2) then carries
// many access log lines instead of one each.
//
// Each Write is kept whole (a slog handler writes one record per call), so lines are never
// split between two writes to the underlying writer. A line larger than the buffer is written
// directly. Lines are delayed by at most the flush interval; a process that crashes loses at
// most that much of its log. Close must run before the process exits. It is safe for
// concurrent use.
type LogWriter struct {
	w     io.Writer
	every time.Duration
	size  int

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer
	armed  bool
	closed bool
	err    error // first error of the underlying writer, returned by Flush and Close
}

// Defaults of [NewLogWriter].
const (
	// LogFlushInterval is the longest a buffered log line waits before it is written.
	LogFlushInterval = 100 * time.Millisecond
	// LogBufferSize is the size of the buffer; a write that would overflow it flushes first.
	LogBufferSize = 64 << 10
)

// NewLogWriter returns a LogWriter on w flushed every interval (LogFlushInterval when
// interval <= 0) with a buffer of LogBufferSize bytes.
func NewLogWriter(w io.Writer, interval time.Duration) *LogWriter {
	if interval <= 0 {
		interval = LogFlushInterval
	}
	l := &LogWriter{w: w, every: interval, size: LogBufferSize, buf: make([]byte, 0, LogBufferSize)}
	l.timer = time.AfterFunc(time.Hour, func() { _ = l.Flush() })
	l.timer.Stop()
	return l
}

// Write buffers p (one log line). After Close it writes p directly.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.w.Write(p)
	}
	if len(l.buf)+len(p) > l.size {
		l.flushLocked()
	}
	if len(p) >= l.size {
		return l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	if !l.armed {
		l.armed = true
		l.timer.Reset(l.every)
	}
	return len(p), nil
}

// Flush writes the buffered lines now. It returns the first error of the underlying writer.
func (l *LogWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	return l.err
}

func (l *LogWriter) flushLocked() {
	l.armed = false
	if len(l.buf) == 0 {
		return
	}
	if _, err := l.w.Write(l.buf); err != nil && l.err == nil {
		l.err = err
	}
	l.buf = l.buf[:0]
}

// Close flushes the buffered lines and stops the timer; later writes go straight to the
// underlying writer. It does not close the underlying writer.
func (l *LogWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer.Stop()
	l.flushLocked()
	l.closed = true
	return l.err
}
