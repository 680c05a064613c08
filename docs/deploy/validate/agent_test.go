package validate

import (
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// agentHealthFlag is the agent's flag for its health listener (GET /healthz).
const agentHealthFlag = "--health-addr"

// checkAgentProbes checks the probes of an agent sidecar c against the running agent, whose
// (rewritten) arguments are args: a liveness probe on GET /healthz of the health listener, which
// answers 200 once the agent has reached the server, and no readiness probe (a dpkeyring outage
// must not take the nodes out of their Service).
func checkAgentProbes(tb testing.TB, c corev1.Container, args []string) {
	tb.Helper()
	if c.ReadinessProbe != nil {
		tb.Errorf("%s: the agent has a readiness probe: a server outage would take the node out of service", c.Name)
	}
	p := c.LivenessProbe
	if p == nil || p.HTTPGet == nil {
		tb.Errorf("%s: the agent has no httpGet liveness probe", c.Name)
		return
	}
	if p.HTTPGet.Path != "/healthz" {
		tb.Errorf("%s: liveness probe path %q, want /healthz", c.Name, p.HTTPGet.Path)
	}
	declared, ok := flagValue(c.Args, agentHealthFlag)
	if !ok {
		tb.Errorf("%s: a liveness probe but no %s", c.Name, agentHealthFlag)
		return
	}
	host, port, err := net.SplitHostPort(declared)
	if err != nil {
		tb.Fatalf("%s %s: %v", agentHealthFlag, declared, err)
	}
	if host != "0.0.0.0" && host != "" {
		tb.Errorf("%s: %s %s: the kubelet probes the pod IP, listen on 0.0.0.0", c.Name, agentHealthFlag, declared)
	}
	if got := containerPort(tb, c, p.HTTPGet.Port); strconv.Itoa(int(got)) != port {
		tb.Errorf("%s: liveness probe port %d, health listener on %s", c.Name, got, port)
	}

	local, _ := flagValue(args, agentHealthFlag)
	deadline := time.Now().Add(10 * time.Second)
	status := 0
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + local + p.HTTPGet.Path)
		if err == nil {
			resp.Body.Close()
			if status = resp.StatusCode; status == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Errorf("%s: GET %s on the agent: status %d, want 200", c.Name, p.HTTPGet.Path, status)
}
