package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The environment variable ASP.NET Core reads (configuration key
// ReadOnlyDataProtectionKeyDirectory with the ASPNETCORE_ prefix; see
// src/DataProtection/DataProtection/src/Internal/KeyManagementOptionsPostSetup.cs).
const readOnlyKeyDirEnv = "ASPNETCORE_ReadOnlyDataProtectionKeyDirectory"

// dpkeyringImage matches the dpkeyring image in any registry.
var dpkeyringImage = regexp.MustCompile(`(^|/)dpkeyring:[^/]+$`)

// manifests holds every object of docs/deploy/kubernetes, by kind.
type manifests struct {
	namespaces   []*corev1.Namespace
	pvcs         []*corev1.PersistentVolumeClaim
	services     []*corev1.Service
	deployments  []*appsv1.Deployment
	cronJobs     []*batchv1.CronJob
	netpols      []*networkingv1.NetworkPolicy
	files        map[string]int // objects per file
	totalObjects int
}

// strictDecoder decodes the kinds the manifests use, refusing unknown and duplicate fields.
func strictDecoder(tb testing.TB) runtime.Decoder {
	tb.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(scheme); err != nil {
			tb.Fatal(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}

// yamlDocuments splits a multi-document YAML stream, dropping documents with no content.
func yamlDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		content := false
		for _, line := range strings.Split(string(doc), "\n") {
			l := strings.TrimSpace(line)
			if l != "" && !strings.HasPrefix(l, "#") && l != "---" {
				content = true
				break
			}
		}
		if content {
			docs = append(docs, doc)
		}
	}
}

// loadManifests strictly decodes every *.yaml file in docs/deploy/kubernetes.
func loadManifests(tb testing.TB) *manifests {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "kubernetes", "*.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(paths) == 0 {
		tb.Fatal("no manifests in docs/deploy/kubernetes")
	}
	dec := strictDecoder(tb)
	m := &manifests{files: map[string]int{}}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		docs, err := yamlDocuments(data)
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		for i, doc := range docs {
			obj, gvk, err := dec.Decode(doc, nil, nil)
			if err != nil {
				tb.Errorf("%s: document %d: %v", path, i+1, err)
				continue
			}
			m.files[filepath.Base(path)]++
			m.totalObjects++
			switch o := obj.(type) {
			case *corev1.Namespace:
				m.namespaces = append(m.namespaces, o)
			case *corev1.PersistentVolumeClaim:
				m.pvcs = append(m.pvcs, o)
			case *corev1.Service:
				m.services = append(m.services, o)
			case *appsv1.Deployment:
				m.deployments = append(m.deployments, o)
			case *batchv1.CronJob:
				m.cronJobs = append(m.cronJobs, o)
			case *networkingv1.NetworkPolicy:
				m.netpols = append(m.netpols, o)
			default:
				tb.Errorf("%s: document %d: kind %s is not checked by this test: add it", path, i+1, gvk.Kind)
			}
		}
	}
	return m
}

// serverDeployment returns the Deployment that runs "dpkeyring serve" and its container.
func (m *manifests) serverDeployment(tb testing.TB) (*appsv1.Deployment, corev1.Container) {
	tb.Helper()
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if dpkeyringImage.MatchString(c.Image) && len(c.Args) > 0 && c.Args[0] == "serve" {
				return d, c
			}
		}
	}
	tb.Fatal("no Deployment runs dpkeyring serve")
	return nil, corev1.Container{}
}

// nodeDeployment returns the Deployment whose app reads the agent's folder.
func (m *manifests) nodeDeployment(tb testing.TB) *appsv1.Deployment {
	tb.Helper()
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if strings.EqualFold(e.Name, readOnlyKeyDirEnv) {
					return d
				}
			}
		}
	}
	tb.Fatalf("no Deployment sets %s", readOnlyKeyDirEnv)
	return nil
}

// serverService returns the Service that selects the server's pods and the URL agents use.
func (m *manifests) serverService(tb testing.TB) (*corev1.Service, string) {
	tb.Helper()
	d, c := m.serverDeployment(tb)
	for _, s := range m.services {
		if s.Namespace != d.Namespace || len(s.Spec.Selector) == 0 {
			continue
		}
		selects := true
		for k, v := range s.Spec.Selector {
			if d.Spec.Template.Labels[k] != v {
				selects = false
			}
		}
		if !selects {
			continue
		}
		if len(s.Spec.Ports) != 1 {
			tb.Fatalf("Service %s has %d ports, want 1", s.Name, len(s.Spec.Ports))
		}
		if !s.Spec.PublishNotReadyAddresses {
			tb.Errorf("Service %s: publishNotReadyAddresses is not true: a failing /readyz (store down) would cut every agent off the last good ring", s.Name)
		}
		p := s.Spec.Ports[0]
		if got := containerPort(tb, c, p.TargetPort); got != 8080 {
			tb.Errorf("Service %s targets container port %d, want 8080", s.Name, got)
		}
		return s, fmt.Sprintf("http://%s.%s.svc.cluster.local:%d", s.Name, s.Namespace, p.Port)
	}
	tb.Fatal("no Service selects the server's pods")
	return nil, ""
}

// containerPort resolves a port (number or name) of container c.
func containerPort(tb testing.TB, c corev1.Container, p intstr.IntOrString) int32 {
	tb.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	tb.Errorf("container %s has no port named %q", c.Name, p.StrVal)
	return 0
}

// podTemplates returns every pod template with a name for messages.
func (m *manifests) podTemplates() map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for _, d := range m.deployments {
		out["Deployment "+d.Namespace+"/"+d.Name] = &d.Spec.Template
	}
	for _, c := range m.cronJobs {
		out["CronJob "+c.Namespace+"/"+c.Name] = &c.Spec.JobTemplate.Spec.Template
	}
	return out
}

// allContainers returns the init containers and containers of a pod.
func allContainers(spec *corev1.PodSpec) []corev1.Container {
	return append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...)
}

// mountOf returns container c's mount of volume name.
func mountOf(c corev1.Container, name string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.Name == name {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

// volumeAt returns the pod volume container c mounts at path, and its mount.
func volumeAt(spec *corev1.PodSpec, c corev1.Container, path string) (corev1.Volume, corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.MountPath != path {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name {
				return v, m, true
			}
		}
	}
	return corev1.Volume{}, corev1.VolumeMount{}, false
}

// secretVolumeHolding returns the secret volume (and its mount) through which container c sees
// the file path.
func secretVolumeHolding(spec *corev1.PodSpec, c corev1.Container, path string) (corev1.Volume, bool) {
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && m.ReadOnly {
				return v, true
			}
		}
	}
	return corev1.Volume{}, false
}

// dpkeyringContainers returns the pod's containers that run the dpkeyring image.
func dpkeyringContainers(spec *corev1.PodSpec) []corev1.Container {
	var out []corev1.Container
	for _, c := range allContainers(spec) {
		if dpkeyringImage.MatchString(c.Image) {
			out = append(out, c)
		}
	}
	return out
}

// serverRings returns the rings the server serves (its --ring flags; "default" without any).
func serverRings(args []string) []string {
	var rings []string
	for i, a := range args {
		if a == "--ring" && i+1 < len(args) {
			rings = append(rings, args[i+1])
		}
	}
	if len(rings) == 0 {
		rings = []string{"default"}
	}
	return rings
}

// TestKubernetesManifests strictly decodes the manifests and checks the invariants the docs
// promise.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	for _, f := range []string{"server.yaml", "rotate-cronjob.yaml", "node-example.yaml"} {
		if m.files[f] == 0 {
			t.Errorf("%s has no objects", f)
		}
	}

	t.Run("security context", func(t *testing.T) {
		for name, tpl := range m.podTemplates() {
			spec := &tpl.Spec
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
				t.Errorf("%s: automountServiceAccountToken is not false (dpkeyring needs no Kubernetes API)", name)
			}
			psc := spec.SecurityContext
			if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: pod seccompProfile is not RuntimeDefault", name)
			}
			for _, c := range allContainers(spec) {
				sc := c.SecurityContext
				nonRoot := (sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) ||
					(psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot && (sc == nil || sc.RunAsNonRoot == nil))
				if !nonRoot {
					t.Errorf("%s: container %s: runAsNonRoot is not true", name, c.Name)
				}
				if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("%s: container %s: readOnlyRootFilesystem is not true", name, c.Name)
				}
				if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("%s: container %s: allowPrivilegeEscalation is not false", name, c.Name)
				}
				if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
					t.Errorf("%s: container %s: capabilities do not drop ALL", name, c.Name)
				}
				if dpkeyringImage.MatchString(c.Image) && c.Resources.Limits.Memory().IsZero() {
					t.Errorf("%s: container %s: no memory limit", name, c.Name)
				}
			}
		}
	})

	t.Run("server", func(t *testing.T) {
		d, c := m.serverDeployment(t)
		spec := &d.Spec.Template.Spec
		if addr, _ := flagValue(c.Args, "--addr"); addr != "0.0.0.0:8080" {
			t.Errorf("serve --addr %q, want 0.0.0.0:8080 (reachable by the Service and the kubelet)", addr)
		}
		if got := containerPort(t, c, intstr.FromString("http")); got != 8080 {
			t.Errorf("container port http = %d, want 8080", got)
		}
		probes := []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{
			{"livenessProbe", c.LivenessProbe, "/healthz"},
			{"readinessProbe", c.ReadinessProbe, "/readyz"},
			{"startupProbe", c.StartupProbe, "/healthz"},
		}
		for _, p := range probes {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s is not an httpGet probe", p.name)
				continue
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("%s path %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
			}
			if got := containerPort(t, c, p.probe.HTTPGet.Port); got != 8080 {
				t.Errorf("%s port %d, want 8080", p.name, got)
			}
		}
		data, ok := flagValue(c.Args, "--data")
		if !ok {
			t.Fatal("serve has no --data")
		}
		v, mount, ok := volumeAt(spec, c, data)
		if !ok || v.PersistentVolumeClaim == nil || mount.ReadOnly {
			t.Fatalf("--data %s is not a writable PersistentVolumeClaim mount", data)
		}
		found := false
		for _, pvc := range m.pvcs {
			found = found || (pvc.Name == v.PersistentVolumeClaim.ClaimName && pvc.Namespace == d.Namespace)
		}
		if !found {
			t.Errorf("the PersistentVolumeClaim %s is not defined", v.PersistentVolumeClaim.ClaimName)
		}
		if *d.Spec.Replicas == 1 && d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Error("a single replica on a ReadWriteOnce volume needs the Recreate strategy")
		}
		if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= 15 {
			t.Error("terminationGracePeriodSeconds must exceed the server's 15s --shutdown-timeout")
		}
		if psc := spec.SecurityContext; psc == nil || psc.FSGroup == nil || *psc.FSGroup != 65532 {
			t.Error("the pod's fsGroup must be 65532 so the image's user can write the volume")
		}
		m.serverService(t)
	})

	t.Run("network policy", func(t *testing.T) {
		d, _ := m.serverDeployment(t)
		if len(m.netpols) != 1 {
			t.Fatalf("%d NetworkPolicies, want 1", len(m.netpols))
		}
		np := m.netpols[0]
		for k, v := range np.Spec.PodSelector.MatchLabels {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("the NetworkPolicy does not select the server pods (label %s)", k)
			}
		}
		// Every pod that talks to the server must carry the client label the policy admits.
		for name, tpl := range m.podTemplates() {
			if name == "Deployment "+d.Namespace+"/"+d.Name {
				continue
			}
			if tpl.Labels["dpkeyring.io/client"] != "true" {
				t.Errorf("%s: pods lack the label dpkeyring.io/client: \"true\" the NetworkPolicy admits", name)
			}
		}
	})

	t.Run("rotation CronJob", func(t *testing.T) {
		_, serverC := m.serverDeployment(t)
		_, url := m.serverService(t)
		if len(m.cronJobs) != 1 {
			t.Fatalf("%d CronJobs, want 1", len(m.cronJobs))
		}
		cj := m.cronJobs[0]
		if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("concurrencyPolicy %q, want Forbid", cj.Spec.ConcurrencyPolicy)
		}
		spec := &cj.Spec.JobTemplate.Spec.Template.Spec
		cs := dpkeyringContainers(spec)
		if len(cs) != 1 || len(cs[0].Args) == 0 || cs[0].Args[0] != "rotate" {
			t.Fatal("the CronJob does not run one dpkeyring rotate container")
		}
		args := cs[0].Args
		if got, _ := flagValue(args, "--server"); got != url {
			t.Errorf("rotate --server %q, want the Service's %q", got, url)
		}
		ring, _ := flagValue(args, "--ring")
		if !slices.Contains(serverRings(serverC.Args), ring) {
			t.Errorf("rotate --ring %q is not served by the server (%q)", ring, serverRings(serverC.Args))
		}
		tf, _ := flagValue(args, "--token-file")
		if _, ok := secretVolumeHolding(spec, cs[0], tf); !ok {
			t.Errorf("--token-file %s is not in a read-only Secret mount", tf)
		}
	})

	t.Run("node with agent", func(t *testing.T) {
		_, serverC := m.serverDeployment(t)
		_, url := m.serverService(t)
		d := m.nodeDeployment(t)
		spec := &d.Spec.Template.Spec

		// The app: the exact variable name, pointing at a read-only mount of an emptyDir.
		var app corev1.Container
		var keyDir string
		for _, c := range spec.Containers {
			for _, e := range c.Env {
				if strings.EqualFold(e.Name, readOnlyKeyDirEnv) {
					if e.Name != readOnlyKeyDirEnv {
						t.Errorf("env %s: the name must be exactly %s", e.Name, readOnlyKeyDirEnv)
					}
					app, keyDir = c, e.Value
				}
			}
		}
		keys, appMount, ok := volumeAt(spec, app, keyDir)
		if !ok {
			t.Fatalf("%s=%s is not a volume mount of container %s", readOnlyKeyDirEnv, keyDir, app.Name)
		}
		if keys.EmptyDir == nil {
			t.Errorf("the key volume %s is not an emptyDir", keys.Name)
		}
		if !appMount.ReadOnly {
			t.Errorf("the app mounts the key volume read-write; mount it readOnly: the agent is the only writer")
		}

		// The agents: an init container with --once and a sidecar without, both writing into
		// the same volume.
		var initAgents, sidecars []corev1.Container
		for _, c := range spec.InitContainers {
			if dpkeyringImage.MatchString(c.Image) && len(c.Args) > 0 && c.Args[0] == "agent" {
				initAgents = append(initAgents, c)
			}
		}
		for _, c := range spec.Containers {
			if dpkeyringImage.MatchString(c.Image) && len(c.Args) > 0 && c.Args[0] == "agent" {
				sidecars = append(sidecars, c)
			}
		}
		if len(initAgents) != 1 || !hasFlag(initAgents[0].Args, "--once") {
			t.Errorf("want one init container running dpkeyring agent --once, have %d", len(initAgents))
		}
		if len(sidecars) != 1 || hasFlag(sidecars[0].Args, "--once") {
			t.Errorf("want one sidecar running dpkeyring agent without --once, have %d", len(sidecars))
		}
		appUser := effectiveUser(spec, app)
		for _, c := range append(initAgents, sidecars...) {
			dir, _ := flagValue(c.Args, "--dir")
			m, ok := mountOf(c, keys.Name)
			if !ok || m.MountPath != dir || m.ReadOnly {
				t.Errorf("%s: agent --dir %q is not its writable mount of the app's key volume %s", c.Name, dir, keys.Name)
			}
			if got, _ := flagValue(c.Args, "--server"); got != url {
				t.Errorf("%s: agent --server %q, want the Service's %q", c.Name, got, url)
			}
			ring, _ := flagValue(c.Args, "--ring")
			if !slices.Contains(serverRings(serverC.Args), ring) {
				t.Errorf("%s: agent --ring %q is not served by the server", c.Name, ring)
			}
			tf, _ := flagValue(c.Args, "--token-file")
			if _, ok := secretVolumeHolding(spec, c, tf); !ok {
				t.Errorf("%s: --token-file %s is not in a read-only Secret mount", c.Name, tf)
			}
			if _, err := expandEnvRefs(c); err != nil {
				t.Errorf("%s: %v", c.Name, err)
			}
			// ASP.NET Core writes key files 0600 and the agent does the same: the app can read
			// them only as the same user.
			if u := effectiveUser(spec, c); u == nil || appUser == nil || *u != *appUser {
				t.Errorf("%s: runs as user %v, the app as %v: the app cannot read files only the agent's user may read", c.Name, deref(u), deref(appUser))
			}
		}
	})
}

// effectiveUser returns the uid container c runs as, when the manifests set it.
func effectiveUser(spec *corev1.PodSpec, c corev1.Container) *int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return c.SecurityContext.RunAsUser
	}
	if spec.SecurityContext != nil {
		return spec.SecurityContext.RunAsUser
	}
	return nil
}

func deref(p *int64) string {
	if p == nil {
		return "unset"
	}
	return strconv.FormatInt(*p, 10)
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandEnvRefs expands $(VAR) references in c's args the way the kubelet does, with made-up
// values for fieldRef variables; a reference to an undefined variable is an error.
func expandEnvRefs(c corev1.Container) ([]string, error) {
	vars := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			vars[e.Name] = "pod-" + strings.ReplaceAll(e.ValueFrom.FieldRef.FieldPath, ".", "-")
		default:
			vars[e.Name] = e.Value
		}
	}
	out := make([]string, len(c.Args))
	for i, a := range c.Args {
		var missing string
		out[i] = envRef.ReplaceAllStringFunc(a, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := vars[name]
			if !ok {
				missing = name
				return ref
			}
			return v
		})
		if missing != "" {
			return nil, fmt.Errorf("argument %q refers to $(%s), which the container's env does not define", a, missing)
		}
	}
	return out, nil
}

// TestKubernetesCommands runs the dpkeyring containers' arguments on loopback: the server's
// (listening on a free port, its volume a temporary folder), then the init agent, the sidecar
// agent and the rotation CronJob against it, with their Secret files holding real tokens.
func TestKubernetesCommands(t *testing.T) {
	m := loadManifests(t)
	_, serverC := m.serverDeployment(t)
	data := t.TempDir()
	args := replaceFlag(t, serverC.Args, "--addr", "127.0.0.1:0")
	args = replaceFlag(t, args, "--data", data)
	s := startServer(t, t.TempDir(), data, nil, args...)
	s.waitStatus(t, "/healthz", 200)
	s.waitStatus(t, "/readyz", 200)
	rings := serverRings(serverC.Args)
	adminToken := s.tokenFile(t, "admin", "cron", rings...)
	nodeToken := s.tokenFile(t, "node", "web", rings...)

	d := m.nodeDeployment(t)
	spec := &d.Spec.Template.Spec
	for _, c := range dpkeyringContainers(spec) {
		t.Run(c.Name, func(t *testing.T) {
			args, err := expandEnvRefs(c)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "keys")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			args = replaceFlag(t, args, "--server", s.url)
			args = replaceFlag(t, args, "--token-file", nodeToken)
			args = replaceFlag(t, args, "--dir", dir)
			if hasFlag(args, "--once") {
				r := runBinary(t, t.TempDir(), nil, args...)
				if r.code != 0 {
					t.Fatalf("dpkeyring %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
				}
				if len(keyFiles(t, dir)) == 0 {
					t.Fatalf("agent --once exited 0 but wrote no key file into %s", dir)
				}
				return
			}
			args = localHealth(t, c, args)
			p := start(t, t.TempDir(), nil, args...)
			waitKeyFiles(t, dir, p)
			checkAgentProbes(t, c, args)
			if code := p.stop(t, 10*time.Second); code != 0 {
				_, stderr := p.output()
				t.Errorf("agent exit code %d after SIGTERM, want 0\n%s", code, stderr)
			}
		})
	}

	for _, cj := range m.cronJobs {
		for _, c := range dpkeyringContainers(&cj.Spec.JobTemplate.Spec.Template.Spec) {
			t.Run(cj.Name+"/"+c.Name, func(t *testing.T) {
				args := replaceFlag(t, c.Args, "--server", s.url)
				args = replaceFlag(t, args, "--token-file", adminToken)
				r := runBinary(t, t.TempDir(), nil, args...)
				if r.code != 0 {
					t.Fatalf("dpkeyring %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
				}
				if !regexp.MustCompile(`^(created key |not due)`).MatchString(r.stdout) {
					t.Errorf("rotate printed %q, want a 'created key' or 'not due' line", r.stdout)
				}
			})
		}
	}
}

// localHealth rewrites the agent's health listener (if its arguments set one) to a free
// loopback port, so that the probes can be tried.
func localHealth(tb testing.TB, c corev1.Container, args []string) []string {
	tb.Helper()
	addr, ok := flagValue(args, agentHealthFlag)
	if !ok {
		return args
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		tb.Fatalf("%s %s: %v", agentHealthFlag, addr, err)
	}
	return replaceFlag(tb, args, agentHealthFlag, freeLoopbackAddr(tb))
}

// freeLoopbackAddr returns a loopback address with a port that was free a moment ago.
func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestKubernetesStrictDecoding proves that loadManifests' decoder refuses what the API server
// would: a misspelt field, a duplicate field, a field of the wrong type.
func TestKubernetesStrictDecoding(t *testing.T) {
	dec := strictDecoder(t)
	const good = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: 1\n"
	if _, _, err := dec.Decode([]byte(good), nil, nil); err != nil {
		t.Fatalf("a valid Deployment: %v", err)
	}
	for name, doc := range map[string]string{
		"unknown field":   "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replica: 1\n",
		"duplicate field": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: 1\n  replicas: 2\n",
		"wrong type":      "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: one\n",
	} {
		if _, _, err := dec.Decode([]byte(doc), nil, nil); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}
