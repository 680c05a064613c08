package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkGetRing measures a ring GET through the whole handler (auth, access log, metrics,
// the cached repository document), without the network.
func BenchmarkGetRing(b *testing.B) {
	for _, bc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"xml", nil, http.StatusOK},
		{"json", map[string]string{"Accept": "application/json"}, http.StatusOK},
		{"not-modified", map[string]string{"If-None-Match": `"2"`}, http.StatusNotModified},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b)
			r := httptest.NewRequest("GET", "/v1/rings/default/keys", nil)
			r.Header.Set("Authorization", "Bearer "+tokNode)
			for k, v := range bc.hdr {
				r.Header.Set(k, v)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					e.h.ServeHTTP(rec, r)
					if rec.Code != bc.want {
						b.Fatalf("status %d", rec.Code)
					}
				}
			})
		})
	}
}
