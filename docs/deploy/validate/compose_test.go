package validate

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads docs/deploy/compose.yaml with the Compose specification's loader, schema
// validation and consistency checks on.
func loadCompose(tb testing.TB) *types.Project {
	tb.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		tb.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "compose.yaml")}},
		Environment: types.Mapping{},
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("dpkeyring-example", true)
	})
	if err != nil {
		tb.Fatalf("compose.yaml: %v", err)
	}
	return p
}

// mustService returns the named service.
func mustService(tb testing.TB, p *types.Project, name string) types.ServiceConfig {
	tb.Helper()
	s, err := p.GetService(name)
	if err != nil {
		tb.Fatalf("compose.yaml: %v", err)
	}
	return s
}

// volumeTarget returns the mount of the named volume in service s.
func volumeTarget(s types.ServiceConfig, source string) (types.ServiceVolumeConfig, bool) {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == source {
			return v, true
		}
	}
	return types.ServiceVolumeConfig{}, false
}

// TestCompose checks compose.yaml: the server is built from the repository's Dockerfile and
// runs its CMD, the agents and the app share the key volume (read-only for the app, at the
// folder the variable names), everything runs hardened, and the commands run for real.
func TestCompose(t *testing.T) {
	p := loadCompose(t)
	srv := mustService(t, p, "dpkeyring")
	initAgent := mustService(t, p, "agent-init")
	agent := mustService(t, p, "agent")
	app := mustService(t, p, "app")

	t.Run("server", func(t *testing.T) {
		root, err := filepath.Abs(repoRoot)
		if err != nil {
			t.Fatal(err)
		}
		if srv.Build == nil || srv.Build.Context != root || srv.Build.Dockerfile != "Dockerfile" {
			t.Errorf("the server is not built from the repository's Dockerfile: %+v", srv.Build)
		}
		if diff := strings.Join(srv.Command, " "); diff != strings.Join(imageCmd(t), " ") {
			t.Errorf("server command %q, want the image's CMD %q", diff, imageCmd(t))
		}
		for _, port := range srv.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("port %s published on %q, want 127.0.0.1 (the API is plain HTTP)", port.Published, port.HostIP)
			}
		}
		data, _ := flagValue(srv.Command, "--data")
		if _, ok := volumeTargetAt(srv, data); !ok {
			t.Errorf("--data %s is not a named volume", data)
		}
	})

	t.Run("hardening", func(t *testing.T) {
		for _, s := range []types.ServiceConfig{srv, initAgent, agent, app} {
			if !s.ReadOnly {
				t.Errorf("%s: read_only is not true", s.Name)
			}
			if !slices.Contains(s.CapDrop, "ALL") {
				t.Errorf("%s: cap_drop lacks ALL", s.Name)
			}
			if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("%s: security_opt lacks no-new-privileges:true", s.Name)
			}
		}
	})

	t.Run("key volume", func(t *testing.T) {
		var keyDir string
		for k, v := range app.Environment {
			if strings.EqualFold(k, readOnlyKeyDirEnv) {
				if k != readOnlyKeyDirEnv {
					t.Errorf("app environment %s: the name must be exactly %s", k, readOnlyKeyDirEnv)
				}
				if v != nil {
					keyDir = *v
				}
			}
		}
		appMount, ok := volumeTargetAt(app, keyDir)
		if !ok || !appMount.ReadOnly {
			t.Fatalf("the app's %s=%q is not a read-only named volume mount", readOnlyKeyDirEnv, keyDir)
		}
		vol := p.Volumes[appMount.Source]
		if vol.DriverOpts["type"] != "tmpfs" {
			t.Errorf("volume %s is not a tmpfs: keys would be written to the host's disk", appMount.Source)
		}
		uid, _, _ := strings.Cut(app.User, ":")
		if !strings.Contains(vol.DriverOpts["o"], "uid="+uid+",") {
			t.Errorf("volume %s options %q: not owned by the app's user %s", appMount.Source, vol.DriverOpts["o"], uid)
		}
		for _, a := range []types.ServiceConfig{initAgent, agent} {
			dir, _ := flagValue(a.Command, "--dir")
			m, ok := volumeTarget(a, appMount.Source)
			if !ok || m.Target != dir || m.ReadOnly {
				t.Errorf("%s: --dir %q is not its writable mount of the app's volume %s", a.Name, dir, appMount.Source)
			}
			if a.User != app.User {
				t.Errorf("%s: user %q, the app's %q: the app could not read the 0600 key files", a.Name, a.User, app.User)
			}
			if a.Image != srv.Image {
				t.Errorf("%s: image %q, want the server's %q", a.Name, a.Image, srv.Image)
			}
			addr, _ := flagValue(srv.Command, "--addr")
			_, port, _ := net.SplitHostPort(addr)
			if got, _ := flagValue(a.Command, "--server"); got != "http://"+srv.Name+":"+port {
				t.Errorf("%s: --server %q, want http://%s:%s", a.Name, got, srv.Name, port)
			}
			tf, _ := flagValue(a.Command, "--token-file")
			secret, ok := strings.CutPrefix(tf, "/run/secrets/")
			if !ok || !slices.ContainsFunc(a.Secrets, func(s types.ServiceSecretConfig) bool { return s.Source == secret }) {
				t.Errorf("%s: --token-file %q is not one of its secrets", a.Name, tf)
			}
		}
		if !hasFlag(initAgent.Command, "--once") || hasFlag(agent.Command, "--once") {
			t.Error("agent-init must run agent --once and agent must run without it")
		}
		// agent --once fails at once when the server is not listening yet: Docker must retry it.
		if !strings.HasPrefix(initAgent.Restart, "on-failure") {
			t.Errorf("%s: restart %q, want on-failure (it may start before the server listens)", initAgent.Name, initAgent.Restart)
		}
		if d, ok := app.DependsOn[initAgent.Name]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("the app does not wait for %s to complete successfully", initAgent.Name)
		}
	})

	t.Run("commands", func(t *testing.T) {
		data := t.TempDir()
		args := replaceFlag(t, srv.Command, "--addr", "127.0.0.1:0")
		args = replaceFlag(t, args, "--data", data)
		s := startServer(t, t.TempDir(), data, nil, args...)
		s.waitStatus(t, "/readyz", 200)
		ring, _ := flagValue(agent.Command, "--ring")
		token := s.tokenFile(t, "node", "compose-app", ring)
		dir := t.TempDir()
		local := func(cmd []string) []string {
			a := replaceFlag(t, cmd, "--server", s.url)
			a = replaceFlag(t, a, "--token-file", token)
			return replaceFlag(t, a, "--dir", dir)
		}
		r := runBinary(t, t.TempDir(), nil, local(initAgent.Command)...)
		if r.code != 0 || len(keyFiles(t, dir)) == 0 {
			t.Fatalf("agent-init: exit %d, %d key files\n%s", r.code, len(keyFiles(t, dir)), r.stderr)
		}
		a := start(t, t.TempDir(), nil, local(agent.Command)...)
		time.Sleep(300 * time.Millisecond)
		if a.exited() {
			_, stderr := a.output()
			t.Fatalf("the agent exited:\n%s", stderr)
		}
		if code := a.stop(t, 10*time.Second); code != 0 {
			t.Errorf("agent exit code %d after SIGTERM, want 0", code)
		}
	})
}

// volumeTargetAt returns the named-volume mount of s at target.
func volumeTargetAt(s types.ServiceConfig, target string) (types.ServiceVolumeConfig, bool) {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == target {
			return v, true
		}
	}
	return types.ServiceVolumeConfig{}, false
}

// TestComposeRejectsUnknownFields proves the loader validates against the Compose schema: a
// misspelt key is an error, so TestCompose's load is a real schema check.
func TestComposeRejectsUnknownFields(t *testing.T) {
	dir := t.TempDir()
	bad := "services:\n  a:\n    image: x\n    read_onyl: true\n"
	path := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: path}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("x", true) })
	if err == nil || !strings.Contains(err.Error(), "read_onyl") {
		t.Errorf("loading a compose file with a misspelt key: %v, want an error naming it", err)
	}
}
