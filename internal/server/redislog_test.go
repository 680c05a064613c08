package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestRedisLogsGoToSlog(t *testing.T) {
	var buf bytes.Buffer
	routeRedisLogs(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { redisLog.logger.Store(nil) })
	redisLog.Printf(context.Background(), "redis: %s:%d: connection pool: failed to dial\n", "127.0.0.1", 6379)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	if m["level"] != "WARN" || m["msg"] != "redis" || m["message"] != "redis: 127.0.0.1:6379: connection pool: failed to dial" {
		t.Errorf("got %v", m)
	}
}
