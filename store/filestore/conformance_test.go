package filestore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store/filestore"
	"github.com/dpkeyring/dpkeyring/store/storetest"
)

func TestMain(m *testing.M) {
	storetest.MaybeRunChild(openSpec)
	maybeRunCrashChild()
	os.Exit(m.Run())
}

// openSpec opens the file store whose root directory is spec.
func openSpec(ctx context.Context, spec string) (storetest.Store, error) {
	return filestore.Open(ctx, filestore.Config{Dir: spec})
}

// writeForeign drops a key file into the ring directory as FileSystemXmlRepository writes it.
func writeForeign(t *testing.T, spec, ring, name string, xml []byte) {
	t.Helper()
	content, err := keyring.FileXML(xml)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(spec, ring)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".xml"), content, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		NewSpec:      func(t *testing.T) string { return filepath.Join(t.TempDir(), "data") },
		Open:         openSpec,
		WriteForeign: writeForeign,
	})
}
