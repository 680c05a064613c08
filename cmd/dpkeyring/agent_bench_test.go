package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestAgentPropagation measures how long a rotation takes to reach N agents: N = 10 agent
// processes of the real binary, and N = 100 agents running the agent loop as goroutines of the
// test process (each with its own client and folder; one process keeps the machine usable). The
// server is the real binary on the embedded file store. It also reports the agents' RSS. It
// runs only with DPKEYRING_AGENT_BENCH=1 (docs/benchmarks.md, "Agent", has the command):
//
//	DPKEYRING_AGENT_BENCH=1 go test -run TestAgentPropagation -v -count=1 ./cmd/dpkeyring
func TestAgentPropagation(t *testing.T) {
	if os.Getenv("DPKEYRING_AGENT_BENCH") != "1" {
		t.Skip("set DPKEYRING_AGENT_BENCH=1 to measure agent propagation")
	}
	rounds := 10
	if s := os.Getenv("DPKEYRING_AGENT_BENCH_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	bin := buildBinary(t)
	for _, tc := range []struct {
		n         int
		processes bool
	}{{10, true}, {100, false}} {
		name := fmt.Sprintf("N=%d/%s", tc.n, map[bool]string{true: "processes", false: "goroutines"}[tc.processes])
		t.Run(name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
			url := "http://" + addr
			_, toks := startServeBinary(t, bin, addr, data)
			admin, node := toks["admin"], toks["node"]
			tf := writeTokenFile(t, node)
			var dirs []string
			var procs []*proc
			for i := range tc.n {
				dir := filepath.Join(t.TempDir(), "keys")
				dirs = append(dirs, dir)
				args := []string{"--server", url, "--token-file", tf, "--dir", dir, "--node-id", fmt.Sprintf("bench-%d", i)}
				if tc.processes {
					procs = append(procs, startProc(t, bin, append([]string{"agent"}, args...)...))
				} else {
					startAgent(t, args...)
				}
			}
			for name := range servedElements(t, url, node) {
				waitFiles(t, 60*time.Second, name+".xml", dirs...)
			}
			var lastAll, median, post []time.Duration
			for range rounds {
				time.Sleep(300 * time.Millisecond) // let every agent be back in its long-poll
				id, start := rotateNow(t, url, admin, `{"immediate":true,"reason":"bench"}`)
				post = append(post, time.Since(start))
				var per []time.Duration
				waitFiles(t, 30*time.Second, "key-"+id+".xml", dirs...)
				for _, d := range dirs {
					fi, err := os.Stat(filepath.Join(d, "key-"+id+".xml"))
					if err != nil {
						t.Fatal(err)
					}
					per = append(per, fi.ModTime().Sub(start))
				}
				slices.Sort(per)
				median = append(median, per[len(per)/2])
				lastAll = append(lastAll, per[len(per)-1])
			}
			slices.Sort(lastAll)
			slices.Sort(median)
			slices.Sort(post)
			t.Logf("%s, %d rotations: rotate POST answered p50 %s; rotation -> median agent p50 %s; rotation -> all %d agents p50 %s, max %s",
				name, rounds, post[len(post)/2].Round(time.Millisecond), median[len(median)/2].Round(time.Millisecond),
				tc.n, lastAll[len(lastAll)/2].Round(time.Millisecond), lastAll[len(lastAll)-1].Round(time.Millisecond))
			if tc.processes {
				var rss []int
				for _, p := range procs {
					rss = append(rss, vmRSS(p.cmd.Process.Pid))
				}
				slices.Sort(rss)
				t.Logf("%s: agent process VmRSS min %d KiB, median %d KiB, max %d KiB", name, rss[0], rss[len(rss)/2], rss[len(rss)-1])
			} else {
				t.Logf("%s: test process VmRSS (100 agents, server client side) %d KiB", name, vmRSS(os.Getpid()))
			}
		})
	}
}
