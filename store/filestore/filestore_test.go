package filestore_test

import (
	"bytes"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/filestore"
	"github.com/dpkeyring/dpkeyring/store/storetest"
)

func mustOpen(tb testing.TB, dir string) *filestore.Store {
	tb.Helper()
	s, err := filestore.Open(tb.Context(), filestore.Config{Dir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustAppend(tb testing.TB, s *filestore.Store, ring string, e store.Element) {
	tb.Helper()
	if _, err := s.Append(tb.Context(), ring, e, 0); err != nil {
		tb.Fatalf("Append(%s): %v", e.Name, err)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		spec    string
		want    string
		wantErr bool
	}{
		{spec: "file:./data", want: "./data"},
		{spec: "file:relative", want: "relative"},
		{spec: "file:relative/sub/dir", want: "relative/sub/dir"},
		{spec: "file:///abs/path", want: "/abs/path"},
		{spec: "file://localhost/abs/path", want: "/abs/path"},
		{spec: "file:/abs/path", want: "/abs/path"},
		{spec: "file:a%20b", want: "a b"},
		{spec: "file:", want: ""},
		{spec: "file://otherhost/abs", wantErr: true},
		{spec: "file://data", wantErr: true},
		{spec: "file:./data?mode=x", wantErr: true},
		{spec: "file:./data#frag", wantErr: true},
		{spec: "file://user:pw@localhost/x", wantErr: true},
		{spec: "redis://localhost:6379", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			u, err := url.Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := filestore.ParseURL(u, os.Getenv)
			if tc.wantErr {
				if !errors.Is(err, store.ErrInvalidSpec) {
					t.Errorf("ParseURL(%q) = %+v, %v; want an error wrapping ErrInvalidSpec", tc.spec, cfg, err)
				}
				return
			}
			if err != nil || cfg.Dir != tc.want {
				t.Errorf("ParseURL(%q) = %q, %v; want %q", tc.spec, cfg.Dir, err, tc.want)
			}
		})
	}
	if got := (filestore.Config{}).String(); got != "file:./data" {
		t.Errorf("default Config.String() = %q, want file:./data", got)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"file:./data", "file:///abs", "file://h/x", "file:a%2", "file:?x", "file:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		u, err := url.Parse(spec)
		if err != nil {
			return
		}
		cfg, err := filestore.ParseURL(u, func(string) string { return "" })
		if err != nil && !errors.Is(err, store.ErrInvalidSpec) {
			t.Errorf("ParseURL(%q): error %v does not wrap ErrInvalidSpec", spec, err)
		}
		if err == nil && strings.ContainsRune(cfg.Dir, 0) {
			t.Errorf("ParseURL(%q) accepted a NUL byte", spec)
		}
	})
}

func mode(tb testing.TB, path string) fs.FileMode {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestPermissions(t *testing.T) {
	root := filepath.Join(t.TempDir(), "nested", "data")
	s := mustOpen(t, root)
	if m := mode(t, root); m != 0o700 {
		t.Errorf("root directory mode %v, want 0700", m)
	}
	e := storetest.RandomKeyElement(t)
	mustAppend(t, s, "r", e)
	if _, err := s.Lock(t.Context(), "r", "me", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutMeta(t.Context(), "r", []byte("m"), 0, 0); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "r")
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("ring directory mode %v, want 0700", m)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range entries {
		names = append(names, de.Name())
		if m := mode(t, filepath.Join(dir, de.Name())); m != 0o600 {
			t.Errorf("%s mode %v, want 0600", de.Name(), m)
		}
	}
	want := []string{".dpkeyring-lease.json", ".dpkeyring-meta.json", ".dpkeyring-version", ".dpkeyring.lock", e.Name + ".xml"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("ring directory entries (-want +got):\n%s", diff)
	}
}

func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: file permissions are not enforced")
	}
	root := t.TempDir()
	s := mustOpen(t, root)
	mustAppend(t, s, "r", storetest.RandomKeyElement(t))
	dir := filepath.Join(root, "r")
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	_, err := s.Append(t.Context(), "r", storetest.RandomKeyElement(t), 0)
	if !errors.Is(err, store.ErrPermission) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "write") {
		t.Errorf("Append into a read-only ring directory: %v; want ErrPermission naming %s and write", err, dir)
	}
	if err := os.Chmod(root, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(root, 0o700) })
	if _, err := filestore.Open(t.Context(), filestore.Config{Dir: root}); !errors.Is(err, store.ErrPermission) {
		t.Errorf("Open of an unreadable directory: %v; want ErrPermission", err)
	}
}

// TestFolderIsFileSystemXmlRepository reads a ring written through the store back as a plain
// folder, the way FileSystemXmlRepository.GetAllElements does: every top-level *.xml file.
func TestFolderIsFileSystemXmlRepository(t *testing.T) {
	root := t.TempDir()
	s := mustOpen(t, root)
	now := time.Date(2026, 11, 24, 4, 0, 0, 0, time.UTC)
	var keys []keyring.Key
	var want [][]byte
	for i := range 5 {
		k, err := keyring.NewKey(now.AddDate(0, 0, i), now.AddDate(0, 0, i+2), now.AddDate(0, 0, i+92))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		want = append(want, k.XML)
	}
	rev, err := keyring.MarshalRevocation(keyring.Revocation{Date: now, KeyID: keys[1].ID, Reason: "compromised"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := keyring.MarshalRevocation(keyring.Revocation{Date: now.Add(-time.Hour), All: true})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, rev, all)
	for _, x := range want {
		name, err := keyring.ElementName(x)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, "app", store.Element{Name: name, XML: x})
	}

	dir := filepath.Join(root, "app")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files [][]byte
	for _, de := range entries {
		if !strings.HasSuffix(de.Name(), ".xml") {
			if !strings.HasPrefix(de.Name(), ".dpkeyring") {
				t.Errorf("unexpected file %s in the key folder", de.Name())
			}
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		name, err := keyring.ElementName(data)
		if err != nil {
			t.Errorf("%s: %v", de.Name(), err)
			continue
		}
		if de.Name() != name+".xml" {
			t.Errorf("file %s holds element %s", de.Name(), name)
		}
		fileForm, err := keyring.FileXML(data)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, fileForm) {
			t.Errorf("%s is not in XElement.Save form:\n%s\nwant:\n%s", de.Name(), data, fileForm)
		}
		if !bytes.HasPrefix(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), []byte("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<")) {
			t.Errorf("%s does not start with the XML declaration", de.Name())
		}
		files = append(files, data)
	}
	if len(files) != len(want) {
		t.Fatalf("%d element files, want %d", len(files), len(want))
	}
	ring, err := keyring.ParseElements(files, keyring.ParseOptions{})
	if err != nil {
		t.Fatalf("ParseElements of the folder: %v", err)
	}
	if ring.Len() != len(keys) || len(ring.Revocations()) != 2 || len(ring.Skipped()) != 0 {
		t.Errorf("ring from the folder: %d keys, %d revocations, %d skipped; want %d, 2, 0",
			ring.Len(), len(ring.Revocations()), len(ring.Skipped()), len(keys))
	}
	for _, k := range keys {
		got, err := ring.Key(k.ID)
		if err != nil {
			t.Errorf("key %s: %v", k.ID, err)
			continue
		}
		if !bytes.Equal(got.Descriptor.MasterKey.Bytes(), k.Descriptor.MasterKey.Bytes()) {
			t.Errorf("key %s: master key differs after the round trip", k.ID)
		}
	}
	if !ring.IsRevoked(mustKey(t, ring, keys[1].ID)) || ring.IsRevoked(mustKey(t, ring, keys[0].ID)) {
		t.Error("revocations not read back from the folder")
	}
}

func mustKey(tb testing.TB, r *keyring.Ring, id keyring.KeyID) keyring.Key {
	tb.Helper()
	k, err := r.Key(id)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// TestListForeignFiles drops files into a ring folder as ASP.NET Core, an operator or a crashed
// writer would, and checks what List makes of them.
func TestListForeignFiles(t *testing.T) {
	root := t.TempDir()
	s := mustOpen(t, root)
	ours := storetest.RandomKeyElement(t)
	mustAppend(t, s, "r", ours)
	dir := filepath.Join(root, "r")
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// A key file as .NET might write it on Windows: BOM, CRLF, four-space indentation.
	theirs := storetest.RandomKeyElement(t)
	fileForm, err := keyring.FileXML(theirs.XML)
	if err != nil {
		t.Fatal(err)
	}
	windows := strings.ReplaceAll(strings.ReplaceAll(string(bytes.TrimPrefix(fileForm, []byte("\xef\xbb\xbf"))), "\n", "\r\n"), "  ", "    ")
	write(theirs.Name+".xml", append([]byte("\xef\xbb\xbf"), windows...))
	// An operator's copy of our key under another name: the same element, listed once.
	ourFile, err := os.ReadFile(filepath.Join(dir, ours.Name+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	write("backup-copy.xml", ourFile)
	// An element of no known kind, under the random name .NET uses for unsafe friendly names.
	write("0b5e1cf4-5d6e-4c85-9d1f-5cc0e5a3a1b2.xml", []byte(`<settings><retention>90</retention></settings>`))
	// Files that are not elements: ignored.
	write("README.txt", []byte("not a key"))
	write("3f1e2d4c-0000-4000-8000-000000000000.tmp", []byte("<key")) // .NET's temp file
	write(".tmp-0123456789abcdef", []byte("<key"))                    // ours, from a crash
	write("notes.xml.bak", []byte("garbage"))
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("subdir/nested.xml", []byte("<not read/>")) // top level only, as .NET

	snap, err := s.List(t.Context(), "r")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range snap.Elements {
		names = append(names, e.Name)
	}
	wantNames := []string{ours.Name, theirs.Name}
	slices.Sort(wantNames)
	if len(names) != 3 || !slices.Contains(names, ours.Name) || !slices.Contains(names, theirs.Name) {
		t.Fatalf("listed %q, want %q and one unknown element", names, wantNames)
	}
	if !slices.IsSorted(names) {
		t.Errorf("elements not sorted by name: %q", names)
	}
	for _, e := range snap.Elements {
		switch e.Name {
		case ours.Name:
			if !bytes.Equal(e.XML, ours.XML) {
				t.Errorf("our element changed:\n%s", e.XML)
			}
		case theirs.Name:
			if !bytes.Equal(e.XML, theirs.XML) {
				t.Errorf("foreign Windows-style file not compacted to the element:\n%s\nwant\n%s", e.XML, theirs.XML)
			}
		default:
			if !strings.HasPrefix(e.Name, "unknown-") || len(e.Name) != len("unknown-")+16 || string(e.XML) != "<settings><retention>90</retention></settings>" {
				t.Errorf("unknown element listed as %s: %s", e.Name, e.XML)
			}
		}
	}
	// Version: counter 1 plus 4 *.xml files (ours, theirs, the copy, the unknown element).
	if snap.Version != 5 {
		t.Errorf("version %d, want 5", snap.Version)
	}
	// The foreign key file is idempotent with the element, and blocks a different one.
	if v, err := s.Append(t.Context(), "r", theirs, 0); err != nil || v != snap.Version {
		t.Errorf("Append of the foreign element = %d, %v; want %d, nil", v, err, snap.Version)
	}
	// The next write removes our stale temporary file and nothing else.
	mustAppend(t, s, "r", storetest.RandomKeyElement(t))
	for _, name := range []string{".tmp-0123456789abcdef"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale temporary file %s not removed: %v", name, err)
		}
	}
	for _, name := range []string{"README.txt", "3f1e2d4c-0000-4000-8000-000000000000.tmp", "notes.xml.bak", "backup-copy.xml"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("foreign file %s touched: %v", name, err)
		}
	}
}

func TestListUnreadableFile(t *testing.T) {
	root := t.TempDir()
	s := mustOpen(t, root)
	mustAppend(t, s, "r", storetest.RandomKeyElement(t))
	bad := filepath.Join(root, "r", "half-written.xml")
	if err := os.WriteFile(bad, []byte(`<?xml version="1.0" encoding="utf-8"?>`+"\n<key id=\"x\">\n  <creat"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.List(t.Context(), "r")
	if !errors.Is(err, filestore.ErrUnreadableFile) || !strings.Contains(err.Error(), bad) {
		t.Errorf("List with an unreadable .xml file: %v; want ErrUnreadableFile naming %s", err, bad)
	}
	// Writing still works: appends never read the other files.
	mustAppend(t, s, "r", storetest.RandomKeyElement(t))
}

func TestAppendNameMustMatchContent(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	a, b := storetest.RandomKeyElement(t), storetest.RandomKeyElement(t)
	_, err := s.Append(t.Context(), "r", store.Element{Name: a.Name, XML: b.XML}, 0)
	if !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("Append of key %s under the name %s: %v; want ErrInvalidName", b.Name, a.Name, err)
	}
	// An element of no known kind keeps the name it is given.
	odd := store.Element{Name: "custom-1", XML: []byte("<custom>1</custom>")}
	mustAppend(t, s, "r", odd)
	if _, err := os.Stat(filepath.Join(s.Dir(), "r", "custom-1.xml")); err != nil {
		t.Error(err)
	}
}

func TestRingsIgnoresOtherDirectories(t *testing.T) {
	root := t.TempDir()
	s := mustOpen(t, root)
	mustAppend(t, s, "good", storetest.RandomKeyElement(t))
	for _, d := range []string{"Bad-Upper", ".hidden", "locked-only", "empty"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Lock(t.Context(), "locked-only", "me", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "file.xml"), []byte("<x/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	rings, err := s.Rings(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"good"}, rings); diff != "" {
		t.Errorf("Rings (-want +got):\n%s", diff)
	}
	// A folder of key files dropped in by hand is a ring.
	if err := os.Mkdir(filepath.Join(root, "dotnet"), 0o700); err != nil {
		t.Fatal(err)
	}
	e := storetest.RandomKeyElement(t)
	x, err := keyring.FileXML(e.XML)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "dotnet", e.Name+".xml"), x, 0o600); err != nil {
		t.Fatal(err)
	}
	if rings, err := s.Rings(t.Context()); err != nil || !slices.Equal(rings, []string{"dotnet", "good"}) {
		t.Errorf("Rings = %q, %v; want [dotnet good]", rings, err)
	}
}

// TestListSeesRewrittenFile checks that List does not serve a stale parse of a file that was
// rewritten in place (same name, same size) after an earlier List.
func TestListSeesRewrittenFile(t *testing.T) {
	root := t.TempDir()
	s := mustOpen(t, root)
	mustAppend(t, s, "r", storetest.RandomKeyElement(t))
	path := filepath.Join(root, "r", "custom.xml")
	for _, content := range []string{"<custom>1</custom>", "<custom>2</custom>", "<custom>3</custom>"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		snap, err := s.List(t.Context(), "r")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range snap.Elements {
			found = found || string(e.XML) == content
		}
		if !found {
			t.Errorf("List after rewriting custom.xml with %s does not show it", content)
		}
	}
	// The bytes handed out are the caller's: changing them does not change the next List.
	snap, err := s.List(t.Context(), "r")
	if err != nil {
		t.Fatal(err)
	}
	want := string(snap.Elements[0].XML)
	snap.Elements[0].XML[0] = 'X'
	again, err := s.List(t.Context(), "r")
	if err != nil || string(again.Elements[0].XML) != want {
		t.Errorf("List after the caller changed returned bytes = %q, %v", again.Elements[0].XML, err)
	}
}
