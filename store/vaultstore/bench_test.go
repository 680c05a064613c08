package vaultstore_test

import (
	"sync"
	"testing"

	"github.com/dpkeyring/dpkeyring/store/vaultstore"
)

// The List benchmarks have two cases: warm (the Store has read the elements before, so List
// reads only the counter and the listing) and cold (a fresh Store reads all 200 secrets).

// ring200 opens a store on a fresh prefix holding a 200-element ring "r".
func ring200(b *testing.B, transit bool) (*vaultstore.Store, vaultstore.Config, []string) {
	b.Helper()
	cfg := testConfig(b)
	if transit {
		cfg.TransitKey = transitKey(b)
	}
	s := mustOpen(b, cfg)
	names := make([]string, 0, 200)
	for range 200 {
		e, _ := keyElement(b)
		mustAppend(b, s, "r", e)
		names = append(names, e.Name)
	}
	return s, cfg, names
}

func BenchmarkList200(b *testing.B) {
	for _, transit := range []bool{false, true} {
		name := "plain"
		if transit {
			name = "transit"
		}
		b.Run(name, func(b *testing.B) {
			s, cfg, _ := ring200(b, transit)
			b.Run("warm", func(b *testing.B) {
				for b.Loop() {
					snap, err := s.List(b.Context(), "r")
					if err != nil || len(snap.Elements) != 200 {
						b.Fatalf("List: %d elements, %v", len(snap.Elements), err)
					}
				}
			})
			// cold: a new Store each time, so every element secret is read (and decrypted).
			b.Run("cold", func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					s2, err := vaultstore.Open(b.Context(), cfg)
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					snap, err := s2.List(b.Context(), "r")
					if err != nil || len(snap.Elements) != 200 {
						b.Fatalf("List: %d elements, %v", len(snap.Elements), err)
					}
					b.StopTimer()
					s2.Close()
					b.StartTimer()
				}
			})
		})
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, transit := range []bool{false, true} {
		name := "plain"
		if transit {
			name = "transit"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig(b)
			if transit {
				cfg.TransitKey = transitKey(b)
			}
			s := mustOpen(b, cfg)
			for b.Loop() {
				b.StopTimer()
				e, _ := keyElement(b)
				b.StartTimer()
				mustAppend(b, s, "r", e)
			}
		})
	}
}

// BenchmarkRawKVRead200 is the reference for BenchmarkList200/plain: a plain vault/api LIST and
// reads of the same 200 element secrets, one after the other and 16 at a time (what List does).
func BenchmarkRawKVRead200(b *testing.B) {
	_, cfg, names := ring200(b, false)
	c := rootClient(b)
	dir := cfg.Prefix + "/rings/r/elements"
	read := func(b *testing.B, n string) {
		sec, err := c.Logical().ReadWithContext(b.Context(), cfg.Mount+"/data/"+dir+"/"+n)
		if err != nil || sec == nil {
			b.Fatalf("read %s: %v", n, err)
		}
	}
	list := func(b *testing.B) {
		sec, err := c.Logical().ListWithContext(b.Context(), cfg.Mount+"/metadata/"+dir)
		if err != nil || sec == nil {
			b.Fatalf("list: %v", err)
		}
	}
	b.Run("sequential", func(b *testing.B) {
		for b.Loop() {
			list(b)
			for _, n := range names {
				read(b, n)
			}
		}
	})
	b.Run("parallel16", func(b *testing.B) {
		for b.Loop() {
			list(b)
			sem := make(chan struct{}, 16)
			var wg sync.WaitGroup
			for _, n := range names {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					read(b, n)
				}()
			}
			wg.Wait()
		}
	})
}
