package vaultstore_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/vault/api"

	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/vaultstore"
)

// serviceAccountJWT returns a signed JWT shaped like a Kubernetes service-account token.
func serviceAccountJWT(t *testing.T, ns, name, uid string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(map[string]string{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:" + ns + ":" + name,
		"kubernetes.io/serviceaccount/namespace": ns,
		"kubernetes.io/serviceaccount/service-account.name": name,
		"kubernetes.io/serviceaccount/service-account.uid":  uid,
	})
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestKubernetesAuth logs in with the Kubernetes auth method of the real Vault. Vault checks
// the service-account token with the Kubernetes TokenReview API, which a small fake answers
// here (there is no Kubernetes on these machines).
func TestKubernetesAuth(t *testing.T) {
	root := rootClient(t)
	var reviews atomic.Int32
	k8s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
			http.NotFound(w, r)
			return
		}
		reviews.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","status":{"authenticated":true,` +
			`"user":{"username":"system:serviceaccount:ns1:dpkeyring","uid":"uid-1"}}}`))
	}))
	defer k8s.Close()

	ctx := t.Context()
	mount := "k8s-" + randomHex(t, 4)
	if err := root.Sys().EnableAuthWithOptionsWithContext(ctx, mount, &api.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Sys().DisableAuth(mount) })
	prefix := "dpkeyring-test/" + randomHex(t, 8)
	policy := `path "secret/data/` + prefix + `/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/` + prefix + `/*" { capabilities = ["list", "read"] }`
	if err := root.Sys().PutPolicyWithContext(ctx, mount, policy); err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string]map[string]any{
		"auth/" + mount + "/config": {"kubernetes_host": k8s.URL, "disable_local_ca_jwt": true},
		"auth/" + mount + "/role/dpk": {"bound_service_account_names": "dpkeyring", "bound_service_account_namespaces": "ns1",
			"token_policies": mount, "token_ttl": "10m"},
	} {
		if _, err := root.Logical().WriteWithContext(ctx, p, data); err != nil {
			t.Fatalf("write %s: %v", p, err)
		}
	}
	jwtFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwtFile, []byte(serviceAccountJWT(t, "ns1", "dpkeyring", "uid-1")), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ := server(t)
	cfg := vaultstore.Config{Address: addr, Auth: vaultstore.AuthKubernetes, KubernetesRole: "dpk",
		KubernetesJWTFile: jwtFile, KubernetesMount: mount, Prefix: prefix}
	s := mustOpen(t, cfg)
	if reviews.Load() == 0 {
		t.Errorf("Vault never asked the TokenReview API")
	}
	e, _ := keyElement(t)
	mustAppend(t, s, "r", e)
	if got := mustList(t, s, "r").Elements; !cmp.Equal(got, []store.Element{e}) {
		t.Errorf("List through Kubernetes auth: %s", cmp.Diff([]store.Element{e}, got))
	}

	wrong := cfg
	wrong.KubernetesRole = "nope"
	if _, err := vaultstore.Open(ctx, wrong); !errors.Is(err, store.ErrPermission) {
		t.Errorf("Open with an unknown role: %v, want ErrPermission", err)
	}
}
