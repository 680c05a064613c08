package main

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// TestServeShutdownKeepsAccessLog checks that the buffered access log loses no line on a
// graceful shutdown: every request made just before the stop has its line, with its request id.
func TestServeShutdownKeepsAccessLog(t *testing.T) {
	s := startServe(t, t.TempDir())
	node := s.tokens["node"]
	const n = 50
	for i := range n {
		req, _ := http.NewRequest("GET", s.url+"/v1/rings/default/keys", nil)
		req.Header.Set("Authorization", "Bearer "+node)
		req.Header.Set("X-Request-Id", fmt.Sprintf("shutdown-test-%d", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: status %d", resp.StatusCode)
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	seen := map[string]bool{}
	for _, m := range logLines(t, s.stderr.String()) {
		if m["msg"] == "request" {
			id, _ := m["request_id"].(string)
			seen[id] = true
		}
	}
	for i := range n {
		if id := fmt.Sprintf("shutdown-test-%d", i); !seen[id] {
			t.Errorf("no access log line for request %s after shutdown", id)
		}
	}
}
