package redisstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	// go-redis logs Sentinel and Cluster topology changes through a process-wide logger;
	// keep test output for test failures.
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}
