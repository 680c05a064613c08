package redisstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/dpkeyring/dpkeyring/store/storetest"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	storetest.MaybeRunChild(openSpec)
	// go-redis logs Sentinel and Cluster topology changes through a process-wide logger;
	// keep test output for test failures.
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}
