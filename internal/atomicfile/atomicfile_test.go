package atomicfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpkeyring/dpkeyring/internal/atomicfile"
)

func TestCreateOnlyAndReplace(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "key-1.xml")
	tmp, err := atomicfile.WriteTemp(dir, ".tmp-", "", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(tmp); err != nil || info.Mode().Perm() != 0o600 || !strings.HasPrefix(filepath.Base(tmp), ".tmp-") {
		t.Fatalf("temporary file %s: %v, %v", tmp, info, err)
	}
	if err := atomicfile.LinkNew(tmp, final); err != nil {
		t.Fatalf("LinkNew: %v", err)
	}
	tmp2, err := atomicfile.WriteTemp(dir, ".tmp-", "", []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.LinkNew(tmp2, final); !errors.Is(err, fs.ErrExist) {
		t.Errorf("LinkNew over an existing file: err = %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(final); string(got) != "one" {
		t.Errorf("existing file changed to %q", got)
	}
	tmp3, err := atomicfile.WriteTemp(dir, ".tmp-", "", []byte("three"))
	if err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Replace(tmp3, final); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(final); string(got) != "three" {
		t.Errorf("replaced file = %q", got)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
