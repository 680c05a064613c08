package validate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// unit is a parsed systemd unit file: section -> key -> values in order (keys may repeat).
type unit struct {
	name     string
	sections map[string]map[string][]string
}

// parseUnit reads the unit file syntax the files in docs/deploy/systemd use: [Section] lines,
// Key=Value lines, # and ; comments, backslash continuations.
func parseUnit(path string) (*unit, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	u := &unit{name: filepath.Base(path), sections: map[string]map[string][]string{}}
	section := ""
	var pending strings.Builder
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if pending.Len() == 0 && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(line)
		line = pending.String()
		pending.Reset()
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u.sections[section] == nil {
				u.sections[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("%s:%d: not a Key=Value line in a section: %q", path, n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		u.sections[section][k] = append(u.sections[section][k], v)
	}
	return u, sc.Err()
}

// get returns the last value of section.key ("" if unset).
func (u *unit) get(section, key string) string {
	vs := u.sections[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// env returns the unit's Environment= assignments.
func (u *unit) env() map[string]string {
	out := map[string]string{}
	for _, v := range u.sections["Service"]["Environment"] {
		for _, kv := range strings.Fields(v) {
			if k, val, ok := strings.Cut(kv, "="); ok {
				out[k] = val
			}
		}
	}
	return out
}

// loadUnits parses every unit file in docs/deploy/systemd.
func loadUnits(tb testing.TB) map[string]*unit {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "systemd", "*"))
	if err != nil {
		tb.Fatal(err)
	}
	units := map[string]*unit{}
	for _, p := range paths {
		u, err := parseUnit(p)
		if err != nil {
			tb.Fatal(err)
		}
		units[u.name] = u
	}
	for _, want := range []string{"dpkeyring.service", "dpkeyring-rotate.service", "dpkeyring-rotate.timer", "dpkeyring-agent@.service"} {
		if units[want] == nil {
			tb.Fatalf("docs/deploy/systemd/%s is missing", want)
		}
	}
	return units
}

const unitBinary = "/usr/local/bin/dpkeyring"

// testInstance is the instance name the template units are tried with: the ring the server unit
// serves by default.
const testInstance = "default"

// execLine is a resolved ExecStart= or ExecStartPre= line.
type execLine struct {
	ignoreFailure bool // the "-" prefix
	args          []string
}

var specifier = regexp.MustCompile(`%.`)
var envVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// resolveExec splits an Exec line and expands the specifiers and ${VAR} references the units
// use: %i (instance), %d (credentials directory), %% and the unit's Environment= values.
func resolveExec(tb testing.TB, u *unit, line, credDir string) execLine {
	tb.Helper()
	var e execLine
	for len(line) > 0 && strings.ContainsRune("-@:+!", rune(line[0])) {
		if line[0] == '-' {
			e.ignoreFailure = true
		} else {
			tb.Fatalf("%s: Exec prefix %q is not handled by this test", u.name, line[0])
		}
		line = line[1:]
	}
	env := u.env()
	for _, w := range strings.Fields(line) {
		if strings.ContainsAny(w, `"'`) {
			tb.Fatalf("%s: quoted Exec arguments are not handled by this test: %s", u.name, line)
		}
		w = specifier.ReplaceAllStringFunc(w, func(s string) string {
			switch s {
			case "%i", "%I":
				return testInstance
			case "%d":
				return credDir
			case "%%":
				return "%"
			}
			tb.Fatalf("%s: specifier %s is not handled by this test", u.name, s)
			return ""
		})
		w = envVar.ReplaceAllStringFunc(w, func(s string) string {
			name := envVar.FindStringSubmatch(s)[1]
			v, ok := env[name]
			if !ok {
				tb.Fatalf("%s: ${%s} has no default in the unit's Environment=", u.name, name)
			}
			return v
		})
		e.args = append(e.args, w)
	}
	if len(e.args) == 0 || e.args[0] != unitBinary {
		tb.Fatalf("%s: Exec line does not run %s: %q", u.name, unitBinary, line)
	}
	e.args = e.args[1:]
	return e
}

// localPaths maps the units' absolute state paths (/var/lib/..., /run/..., /etc/...) into root,
// creating the parent directories as systemd's StateDirectory= and RuntimeDirectory= would.
func localPaths(tb testing.TB, args []string, root string) []string {
	tb.Helper()
	out := append([]string(nil), args...)
	for i, a := range out {
		for _, prefix := range []string{"/var/lib/", "/run/", "/etc/"} {
			if strings.HasPrefix(a, prefix) {
				out[i] = filepath.Join(root, a)
				if err := os.MkdirAll(filepath.Dir(out[i]), 0o700); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	return out
}

// TestSystemdVerify runs systemd-analyze verify on the units, with ExecStart pointing at the
// built binary; any warning fails.
func TestSystemdVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is not installed (apt-get install systemd)")
		}
		t.Skip("systemd-analyze is not installed (apt-get install systemd): the units are not verified")
	}
	bin := mustBinary(t)
	dir := t.TempDir()
	paths, err := filepath.Glob(filepath.Join("..", "systemd", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.Replace(filepath.Base(p), "@.", "@"+testInstance+".", 1)
		b = bytes.ReplaceAll(b, []byte(unitBinary), []byte(bin))
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, "./"+name)
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, names...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", strings.Join(names, " "), err, out)
	}
}

// TestSystemdUnits checks the units' settings and runs their commands: the server from
// dpkeyring.service, then the rotation and the agent (its ExecStartPre and ExecStart) against it.
func TestSystemdUnits(t *testing.T) {
	units := loadUnits(t)
	root := t.TempDir()
	credDir := t.TempDir()

	srv := units["dpkeyring.service"]
	t.Run("dpkeyring.service settings", func(t *testing.T) {
		wants := map[string]string{
			"Type":            "exec",
			"NoNewPrivileges": "yes",
			"ProtectSystem":   "strict",
			"ProtectHome":     "yes",
			"PrivateTmp":      "yes",
			"UMask":           "0077",
			"Restart":         "on-failure",
		}
		for k, want := range wants {
			if got := srv.get("Service", k); got != want {
				t.Errorf("%s=%q, want %q", k, got, want)
			}
		}
		if u := srv.get("Service", "User"); u == "" || u == "root" {
			t.Errorf("User=%q: run the server as its own user", u)
		}
		stop, err := time.ParseDuration(srv.get("Service", "TimeoutStopSec") + "s")
		if err != nil || stop <= 15*time.Second {
			t.Errorf("TimeoutStopSec=%q must exceed the 15s --shutdown-timeout", srv.get("Service", "TimeoutStopSec"))
		}
		if srv.get("Install", "WantedBy") != "multi-user.target" {
			t.Error("not WantedBy=multi-user.target")
		}
	})

	// The server, as the unit runs it, with DPKEYRING_ADDR overridden as an EnvironmentFile
	// would (a free loopback port).
	e := resolveExec(t, srv, srv.get("Service", "ExecStart"), credDir)
	data, ok := flagValue(e.args, "--data")
	if want := "/var/lib/" + srv.get("Service", "StateDirectory"); !ok || data != want {
		t.Errorf("serve --data %q, want the StateDirectory %s", data, want)
	}
	args := localPaths(t, e.args, root)
	env := []string{}
	for k, v := range srv.env() {
		env = append(env, k+"="+v)
	}
	if _, ok := srv.env()["DPKEYRING_RINGS"]; ok {
		t.Error("dpkeyring.service sets DPKEYRING_RINGS: it would replace the rings of a config file")
	}
	// serve's default address, which the rotate unit and the agent default to; an
	// EnvironmentFile moves it to a free port here.
	const defaultAddr = "127.0.0.1:8080"
	if !strings.Contains(usageOf(t, "serve"), "default "+defaultAddr) {
		t.Errorf("serve's usage does not say its default address is %s", defaultAddr)
	}
	env = append(env, "DPKEYRING_ADDR=127.0.0.1:0")
	localData, _ := flagValue(args, "--data")
	s := startServer(t, t.TempDir(), localData, env, args...)
	s.waitStatus(t, "/healthz", 200)
	s.waitStatus(t, "/readyz", 200)
	defaultURL := "http://" + defaultAddr

	t.Run("dpkeyring-rotate", func(t *testing.T) {
		u := units["dpkeyring-rotate.service"]
		if u.get("Service", "Type") != "oneshot" {
			t.Errorf("Type=%q, want oneshot", u.get("Service", "Type"))
		}
		timer := units["dpkeyring-rotate.timer"]
		if timer.get("Timer", "OnCalendar") == "" || timer.get("Timer", "Persistent") != "true" {
			t.Error("the timer needs OnCalendar= and Persistent=true (catch up on runs missed while off)")
		}
		if timer.get("Install", "WantedBy") != "timers.target" {
			t.Error("the timer is not WantedBy=timers.target")
		}
		cred := u.get("Service", "LoadCredential")
		if !strings.HasPrefix(cred, "token:/etc/dpkeyring/") {
			t.Errorf("LoadCredential=%q, want token:/etc/dpkeyring/...", cred)
		}
		e := resolveExec(t, u, u.get("Service", "ExecStart"), credDir)
		if e.args[0] != "rotate" {
			t.Fatalf("ExecStart runs %q, want rotate", e.args[0])
		}
		if got, _ := flagValue(e.args, "--server"); got != defaultURL {
			t.Errorf("rotate --server %q, want the server unit's default %s", got, defaultURL)
		}
		if got, _ := flagValue(e.args, "--token-file"); got != filepath.Join(credDir, "token") {
			t.Errorf("rotate --token-file %q, want the credential %%d/token", got)
		}
		tok := s.tokenFile(t, "admin", "rotate")
		copyFile(t, tok, filepath.Join(credDir, "token"))
		args := replaceFlag(t, e.args, "--server", s.url)
		r := runBinary(t, t.TempDir(), nil, localPaths(t, args, root)...)
		if r.code != 0 {
			t.Fatalf("dpkeyring %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
		if !regexp.MustCompile(`^(created key |not due)`).MatchString(r.stdout) {
			t.Errorf("rotate printed %q", r.stdout)
		}
	})

	t.Run("dpkeyring-agent@", func(t *testing.T) {
		u := units["dpkeyring-agent@.service"]
		if got := u.env()["DPKEYRING_SERVER"]; got != defaultURL {
			t.Errorf("DPKEYRING_SERVER default %q, want the server unit's %s", got, defaultURL)
		}
		if u.get("Service", "LoadCredential") != "token:/etc/dpkeyring/agent-%i.token" {
			t.Errorf("LoadCredential=%q", u.get("Service", "LoadCredential"))
		}
		pre := resolveExec(t, u, u.get("Service", "ExecStartPre"), credDir)
		main := resolveExec(t, u, u.get("Service", "ExecStart"), credDir)
		if !pre.ignoreFailure || !hasFlag(pre.args, "--once") {
			t.Errorf("ExecStartPre must be -dpkeyring agent --once (a failure must not keep the agent down)")
		}
		if main.ignoreFailure || hasFlag(main.args, "--once") {
			t.Errorf("ExecStart must run the agent without --once")
		}
		wantDir := "/var/lib/" + strings.ReplaceAll(u.get("Service", "StateDirectory"), "%i", testInstance)
		for _, e := range []execLine{pre, main} {
			if e.args[0] != "agent" {
				t.Fatalf("runs %q, want agent", e.args[0])
			}
			if got, _ := flagValue(e.args, "--dir"); got != wantDir {
				t.Errorf("agent --dir %q, want the StateDirectory %s", got, wantDir)
			}
			if got, _ := flagValue(e.args, "--ring"); got != testInstance {
				t.Errorf("agent --ring %q, want the instance name", got)
			}
		}
		healthFile, _ := flagValue(main.args, "--health-file")
		wantRun := "/run/" + strings.ReplaceAll(u.get("Service", "RuntimeDirectory"), "%i", testInstance) + "/"
		if !strings.HasPrefix(healthFile, wantRun) {
			t.Errorf("--health-file %q is not in the RuntimeDirectory %s", healthFile, wantRun)
		}

		copyFile(t, s.tokenFile(t, "node", "vm-1", testInstance), filepath.Join(credDir, "token"))
		preArgs := localPaths(t, replaceFlag(t, pre.args, "--server", s.url), root)
		r := runBinary(t, t.TempDir(), nil, preArgs...)
		dir, _ := flagValue(preArgs, "--dir")
		if r.code != 0 || len(keyFiles(t, dir)) == 0 {
			t.Fatalf("ExecStartPre: dpkeyring %s: exit %d, %d key files\n%s", strings.Join(preArgs, " "), r.code, len(keyFiles(t, dir)), r.stderr)
		}
		mainArgs := localPaths(t, replaceFlag(t, main.args, "--server", s.url), root)
		p := start(t, t.TempDir(), nil, mainArgs...)
		localHealth, _ := flagValue(mainArgs, "--health-file")
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, err := os.ReadFile(localHealth)
			var h map[string]any
			if err == nil && json.Unmarshal(b, &h) == nil && h["ok"] == true {
				break
			}
			if p.exited() || time.Now().After(deadline) {
				_, stderr := p.output()
				t.Fatalf("the agent wrote no healthy --health-file within 10s (%v, %s)\n%s", err, b, stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if code := p.stop(t, 10*time.Second); code != 0 {
			t.Errorf("agent exit code %d after SIGTERM, want 0 (Restart=always would restart it anyway)", code)
		}
	})

	if code := s.stop(t, 20*time.Second); code != 0 {
		t.Errorf("server exit code %d after SIGTERM, want 0: systemd would mark the unit failed", code)
	}
	if !slices.Contains(strings.Fields(srv.get("Unit", "After")), "network-online.target") {
		t.Error("dpkeyring.service is not After=network-online.target")
	}
}

// copyFile copies src to dst with mode 0400, as systemd's LoadCredential= does.
func copyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	os.Remove(dst)
	if err := os.WriteFile(dst, b, 0o400); err != nil {
		tb.Fatal(err)
	}
}
