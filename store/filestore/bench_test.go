package filestore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpkeyring/dpkeyring/store/filestore"
	"github.com/dpkeyring/dpkeyring/store/storetest"
)

// mustRing200 returns a store holding a 200-key ring named "bench", and the ring's directory.
func mustRing200(b *testing.B) (*filestore.Store, string) {
	b.Helper()
	s, err := filestore.Open(b.Context(), filestore.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	for range 200 {
		if _, err := s.Append(b.Context(), "bench", storetest.RandomKeyElement(b), 0); err != nil {
			b.Fatal(err)
		}
	}
	return s, filepath.Join(s.Dir(), "bench")
}

// BenchmarkList200 lists a 200-key ring with a warm store: one directory read and a stat per
// file; unchanged files are not read again.
func BenchmarkList200(b *testing.B) {
	s, _ := mustRing200(b)
	for b.Loop() {
		snap, err := s.List(b.Context(), "bench")
		if err != nil || len(snap.Elements) != 200 {
			b.Fatalf("List: %d elements, %v", len(snap.Elements), err)
		}
	}
}

// BenchmarkList200Cold lists a 200-key ring through a freshly opened store, which reads and
// compacts every file (BenchmarkList200 reuses the parses of unchanged files).
func BenchmarkList200Cold(b *testing.B) {
	s, _ := mustRing200(b)
	for b.Loop() {
		fresh := mustOpen(b, s.Dir())
		snap, err := fresh.List(b.Context(), "bench")
		if err != nil || len(snap.Elements) != 200 {
			b.Fatalf("List: %d elements, %v", len(snap.Elements), err)
		}
	}
}

// BenchmarkRawRead200 is the reference for BenchmarkList200: os.ReadDir plus os.ReadFile of the
// 200 key files, with no parsing.
func BenchmarkRawRead200(b *testing.B) {
	_, dir := mustRing200(b)
	for b.Loop() {
		entries, err := os.ReadDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, de := range entries {
			if !strings.HasSuffix(de.Name(), ".xml") {
				continue
			}
			if _, err := os.ReadFile(filepath.Join(dir, de.Name())); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 200 {
			b.Fatalf("read %d files", n)
		}
	}
}

// BenchmarkAppend appends a new key to a ring (two fsynced files: the key and the version
// counter, and the directory).
func BenchmarkAppend(b *testing.B) {
	s, err := filestore.Open(b.Context(), filestore.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		e := storetest.RandomKeyElement(b)
		b.StartTimer()
		if _, err := s.Append(b.Context(), "bench", e, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFsync is the reference for BenchmarkAppend: create, write and fsync one file of the
// size of a key file, then fsync the directory.
func BenchmarkFsync(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 1200)
	i := 0
	for b.Loop() {
		i++
		f, err := os.Create(filepath.Join(dir, strings.Repeat("x", i%7+1)+string(rune('a'+i%26))+".tmp"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		d, err := os.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			b.Fatal(err)
		}
		d.Close()
	}
}
