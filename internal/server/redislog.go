package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// redisLogger routes go-redis's own log lines (reconnects, pool errors; by default plain text
// on stderr, outside the JSON log) to the server's slog logger at warn level. go-redis has one
// process-wide logger: the adapter is installed once and logs to the logger of the latest
// [Run].
type redisLogger struct{ logger atomic.Pointer[slog.Logger] }

var (
	redisLog        redisLogger
	redisLogInstall sync.Once
)

// Printf implements the logger interface of redis.SetLogger.
func (r *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l := r.logger.Load()
	if l == nil {
		return
	}
	l.LogAttrs(ctx, slog.LevelWarn, "redis", slog.String("message", strings.TrimSpace(fmt.Sprintf(format, v...))))
}

// routeRedisLogs sends go-redis's log lines to logger.
func routeRedisLogs(logger *slog.Logger) {
	redisLog.logger.Store(logger)
	redisLogInstall.Do(func() { redis.SetLogger(&redisLog) })
}
