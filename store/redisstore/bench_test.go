package redisstore_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/redisstore"
)

type storeAndList struct {
	s    *redisstore.Store
	list string
	raw  redis.UniversalClient
}

// The benchmarks run against the standalone server. BenchmarkRawLRANGE200 is the reference:
// the bare LRANGE of the same 200-key list with a plain go-redis client.

func fill200(b *testing.B) (*storeAndList, []store.Element) {
	b.Helper()
	cfg := standaloneConfig(b)
	s := mustOpen(b, cfg)
	ctx := ctxT(b)
	var els []store.Element
	for range 200 {
		name, xml := keyElement(b)
		e := store.Element{Name: name, XML: []byte(xml)}
		if _, err := s.Append(ctx, "bench", e, 0); err != nil {
			b.Fatal(err)
		}
		els = append(els, e)
	}
	return &storeAndList{s: s, list: cfg.ListKey("bench"), raw: rawClient(b, cfg)}, els
}

func BenchmarkList200(b *testing.B) {
	sl, _ := fill200(b)
	ctx := ctxT(b)
	for b.Loop() {
		snap, err := sl.s.List(ctx, "bench")
		if err != nil || len(snap.Elements) != 200 {
			b.Fatalf("List: %d elements, %v", len(snap.Elements), err)
		}
	}
}

func BenchmarkRawLRANGE200(b *testing.B) {
	sl, _ := fill200(b)
	ctx := ctxT(b)
	for b.Loop() {
		l, err := sl.raw.LRange(ctx, sl.list, 0, -1).Result()
		if err != nil || len(l) != 200 {
			b.Fatalf("LRANGE: %d elements, %v", len(l), err)
		}
	}
}

// BenchmarkAppend appends a new key element to a 200-key ring (a rotation's write); making
// the element (crypto/rand and string building, about 1 µs) is inside the loop.
func BenchmarkAppend(b *testing.B) {
	sl, _ := fill200(b)
	ctx := ctxT(b)
	for b.Loop() {
		name, xml := keyElement(b)
		if _, err := sl.s.Append(ctx, "bench", store.Element{Name: name, XML: []byte(xml)}, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendExisting re-appends an element the ring has (the idempotent no-op path).
func BenchmarkAppendExisting(b *testing.B) {
	sl, els := fill200(b)
	ctx := ctxT(b)
	for b.Loop() {
		if _, err := sl.s.Append(ctx, "bench", els[100], 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendWait is BenchmarkAppend on the Sentinel master, where every write waits for
// its replica's acknowledgement (WAIT 1).
func BenchmarkAppendWait(b *testing.B) {
	s := mustOpen(b, sentinelConfig(b))
	if s.WaitReplicas() != 1 {
		b.Fatalf("WaitReplicas() = %d, want 1", s.WaitReplicas())
	}
	ctx := ctxT(b)
	for b.Loop() {
		name, xml := keyElement(b)
		if _, err := s.Append(ctx, "bench", store.Element{Name: name, XML: []byte(xml)}, 0); err != nil {
			b.Fatal(err)
		}
	}
}
