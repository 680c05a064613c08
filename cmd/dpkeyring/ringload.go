package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dpkeyring/dpkeyring/internal/storespec"
	"github.com/dpkeyring/dpkeyring/keyring"
)

// maxInputBytes bounds what the commands read from one file or stdin.
const maxInputBytes = 64 << 20

// loadedRing is a key ring read from a --keys PATH, with where each element came from.
type loadedRing struct {
	ring *keyring.Ring
	// sources names each element by its index in the input: the file name for a directory, or
	// "element N" for a repository document.
	sources []string
}

// source names the element at index i for messages.
func (l *loadedRing) source(i int) string {
	if i >= 0 && i < len(l.sources) {
		return l.sources[i]
	}
	return fmt.Sprintf("element %d", i)
}

// loadKeys reads the key ring a --keys PATH names: a directory of element files (every *.xml
// at its top level, as FileSystemXmlRepository reads it), one element file, a <repository>
// document, or a store spec (file:DIR, redis://…, vault://…; ring names the ring in the store).
// Certificates open master keys protected with ProtectKeysWithCertificate.
func (c *cli) loadKeys(ctx context.Context, path, ring string, cf certFlags) (*loadedRing, error) {
	elements, sources, err := c.sourceElements(ctx, path, ring)
	if err != nil {
		return nil, err
	}
	return parseLoaded(path, elements, sources, cf)
}

// loadRing reads a key ring from a path (not a store spec), as loadKeys does.
func loadRing(path string, cf certFlags) (*loadedRing, error) {
	elements, sources, err := readElements(path)
	if err != nil {
		return nil, err
	}
	return parseLoaded(path, elements, sources, cf)
}

// parseLoaded parses elements read from path as ASP.NET Core loads a ring.
func parseLoaded(path string, elements [][]byte, sources []string, cf certFlags) (*loadedRing, error) {
	opts, err := cf.parseOptions()
	if err != nil {
		return nil, err
	}
	r, err := keyring.ParseElements(elements, opts)
	if err != nil {
		return nil, fmt.Errorf("key ring %s cannot be loaded (ASP.NET Core would fail on it too): %w", storespec.Redact(path), err)
	}
	return &loadedRing{ring: r, sources: sources}, nil
}

// readElements returns the elements at path and a name for each.
func readElements(path string) ([][]byte, []string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("key ring: %w", err)
	}
	if info.IsDir() {
		return readElementDir(path)
	}
	data, err := readFileLimited(path)
	if err != nil {
		return nil, nil, fmt.Errorf("key ring: %w", err)
	}
	if rootElementName(data) != "repository" {
		if _, err := keyring.CompactXML(data); err != nil {
			return nil, nil, fmt.Errorf("key ring %s is not well-formed XML: %w", path, err)
		}
		return [][]byte{data}, []string{filepath.Base(path)}, nil
	}
	elements, err := keyring.SplitRepository(data)
	if err != nil {
		return nil, nil, fmt.Errorf("key ring %s: %w", path, err)
	}
	sources := make([]string, len(elements))
	for i := range elements {
		sources[i] = fmt.Sprintf("%s element %d", filepath.Base(path), i+1)
	}
	return elements, sources, nil
}

// readElementDir reads every *.xml entry at the top level of dir, in name order, as
// FileSystemXmlRepository.GetAllElements does (Directory.EnumerateFileSystemInfos("*.xml",
// TopDirectoryOnly), case-sensitive on Linux): an entry that cannot be read or parsed, a
// directory included, fails the whole ring.
func readElementDir(dir string) ([][]byte, []string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("key ring: %w", err)
	}
	var elements [][]byte
	var sources []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".xml") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		info, err := os.Stat(p) // follows symbolic links, as .NET does
		if err != nil {
			return nil, nil, fmt.Errorf("key ring: %w", err)
		}
		if info.IsDir() {
			// FileSystemXmlRepository enumerates file system entries matching *.xml, so it
			// tries to open such a directory as a file and fails the whole ring.
			return nil, nil, fmt.Errorf("key ring: %s is a directory, not an element file (ASP.NET Core fails the whole ring on it)", p)
		}
		data, err := readFileLimited(p)
		if err != nil {
			return nil, nil, fmt.Errorf("key ring: %w", err)
		}
		if _, err := keyring.CompactXML(data); err != nil {
			return nil, nil, fmt.Errorf("key ring file %s is not well-formed XML (ASP.NET Core fails the whole ring on it): %w", p, err)
		}
		elements = append(elements, data)
		sources = append(sources, e.Name())
	}
	return elements, sources, nil
}

// rootElementName returns the local name of the document's root element, or "".
func rootElementName(data []byte) string {
	d := xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	for {
		tok, err := d.RawToken()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local
		}
	}
}

// readFileLimited reads a file of at most maxInputBytes.
func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, path)
}

// readLimited reads r to the end, refusing more than maxInputBytes.
func readLimited(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxInputBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxInputBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB", name, maxInputBytes>>20)
	}
	return data, nil
}

// parseOptions reads the certificates named by the flags.
func (f *certFlags) parseOptions() (keyring.ParseOptions, error) {
	var opts keyring.ParseOptions
	if len(f.certs) == 0 {
		return opts, nil
	}
	var password []byte
	if f.passwordFile != "" {
		p, err := readFileLimited(f.passwordFile)
		if err != nil {
			return opts, fmt.Errorf("certificate password: %w", err)
		}
		p = bytes.TrimSuffix(p, []byte("\n"))
		password = bytes.TrimSuffix(p, []byte("\r"))
	}
	for _, name := range f.certs {
		data, err := readFileLimited(name)
		if err != nil {
			return opts, fmt.Errorf("certificate: %w", err)
		}
		certs, err := keyring.ParseCertificates(data, password)
		if err != nil {
			return opts, fmt.Errorf("certificate %s: %w", name, err)
		}
		opts.Certificates = append(opts.Certificates, certs...)
	}
	return opts, nil
}
