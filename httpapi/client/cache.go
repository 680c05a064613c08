package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/atomicfile"
)

// cacheFile is the JSON of a cached ring (DIR/ring-NAME.json).
type cacheFile struct {
	Ring     string    `json:"ring"`
	Version  uint64    `json:"version"`
	ETag     string    `json:"etag"`
	Fetched  time.Time `json:"fetched"`
	Document []byte    `json:"document"` // the repository document, base64
}

func (c *Client) cachePath(ring string) string {
	return filepath.Join(c.cacheDir, "ring-"+ring+".json")
}

// writeCache stores doc in the cache directory atomically.
func (c *Client) writeCache(doc *RingDoc) error {
	b, err := json.Marshal(cacheFile{Ring: doc.Ring, Version: doc.Version, ETag: doc.ETag, Fetched: doc.Fetched, Document: doc.Document})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.cacheDir, 0o700); err != nil {
		return err
	}
	return writeFileAtomic(c.cachePath(doc.Ring), b)
}

// readCache loads the cached document of ring. It returns an error wrapping [ErrNotCached] if
// there is no cache file.
func (c *Client) readCache(ring string) (*RingDoc, error) {
	f, err := os.Open(c.cachePath(ring))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotCached, ring)
	}
	if err != nil {
		return nil, fmt.Errorf("client: reading the cache: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 2*maxDocumentBytes))
	if err != nil {
		return nil, fmt.Errorf("client: reading the cache: %w", err)
	}
	var cf cacheFile
	if err := json.Unmarshal(b, &cf); err != nil || cf.Ring != ring || cf.ETag == "" {
		return nil, fmt.Errorf("%w: cache file %s is not a cached ring %s", ErrNotCached, c.cachePath(ring), ring)
	}
	doc, err := c.newDoc(ring, cf.Version, cf.ETag, cf.Document, cf.Fetched)
	if err != nil {
		return nil, fmt.Errorf("%w: cache file %s: %w", ErrNotCached, c.cachePath(ring), err)
	}
	return doc, nil
}

// writeFileAtomic replaces path with data: a temporary file in the same directory (mode 0600)
// written and fsynced, renamed over path, then the directory fsynced. Readers see the old or
// the new content, never a part.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := atomicfile.WriteTemp(dir, "."+filepath.Base(path)+".", ".tmp", data)
	if err != nil {
		return err
	}
	if err := atomicfile.Replace(tmp, path); err != nil {
		return err
	}
	return atomicfile.SyncDir(dir)
}
