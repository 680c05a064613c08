package rotation_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store/filestore"
)

// TestConcurrentRotateFileStore races 50 writers, each with its own store handle (as separate
// servers or cron runs would have), on one real file store while a key is due: exactly one key
// is created.
func TestConcurrentRotateFileStore(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 50 {
		wg.Go(func() {
			s, err := filestore.Open(context.Background(), filestore.Config{Dir: dir})
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			defer s.Close()
			r := &rotation.Rotator{Store: s, Ring: "default", Policy: keyring.DefaultPolicy(),
				Owner: fmt.Sprintf("writer-%d", i), LockWait: time.Minute, Now: func() time.Time { return now }}
			res, err := r.Rotate(context.Background(), rotation.Request{})
			if err != nil {
				t.Errorf("Rotate: %v", err)
				return
			}
			if res.Created {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("%d writers created a key, want exactly 1", created)
	}
	s, err := filestore.Open(t.Context(), filestore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRing(t, s).Len(); got != 1 {
		t.Errorf("ring has %d keys, want 1", got)
	}
}
