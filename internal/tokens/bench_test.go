package tokens

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkAuthenticate measures one token check against a file of 100 tokens (the hot path of
// every authenticated request), from parallel goroutines: a valid token and an unknown one.
func BenchmarkAuthenticate(b *testing.B) {
	path := filepath.Join(b.TempDir(), "tokens.json")
	var news []NewToken
	for i := range 100 {
		news = append(news, NewToken{Name: fmt.Sprintf("node-%d", i), Role: RoleNode, Rings: []string{"default"}})
	}
	secrets := mustCreate(b, path, news...)
	set, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		token string
		want  bool
	}{
		{"valid", secrets[57], true},
		{"unknown", Prefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, ok := set.Authenticate(bc.token); ok != bc.want {
						b.Fatalf("Authenticate = %v", ok)
					}
				}
			})
		})
	}
}
