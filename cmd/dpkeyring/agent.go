package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dpkeyring/dpkeyring/httpapi/client"
	"github.com/dpkeyring/dpkeyring/internal/atomicfile"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

const agentUsage = `Usage:
  dpkeyring agent --server URL --token-file F --dir DIR [--ring R] [--node-id ID] [--once]
      [--health-addr HOST:PORT] [--health-file F] [more flags below]

Keeps the key folder DIR equal to a ring of a dpkeyring server, for ASP.NET Core nodes that read
their keys read-only from it (ASPNETCORE_ReadOnlyDataProtectionKeyDirectory, 8.0.4+) or with
PersistKeysToFileSystem + DisableAutomaticKeyGeneration. It long-polls the ring, so a rotation
reaches the folder in well under a second, and writes each key and revocation as
DIR/key-{id}.xml / DIR/revocation-*.xml exactly as ASP.NET Core's FileSystemXmlRepository does
(mode 0600, DIR mode 0700), each atomically and create-only.

It never deletes, renames or rewrites a file: not the files it wrote (the server never removes a
key from a ring), and never a file it did not write (a file whose content differs from the
served element is left as is and reported). What it wrote is recorded in
DIR/.dpkeyring-agent.json (not an *.xml file, so ASP.NET Core ignores it).

When the server is unreachable the folder stays as it is and the agent retries with exponential
backoff and jitter (--min-backoff .. --max-backoff); at start with no server the nodes keep
reading the folder they have. Logs are JSON lines on stderr; tokens and keys are never logged.
SIGINT or SIGTERM stops it.

Exit codes: with --once 0 when the folder was synced, 1 on failure (server still unavailable
after --timeout, a 401/403/404 answer (not retried), an I/O error, a file that differs from the
served element, or a folder that does not load as a key ring because of a foreign file; the
folder is left as is), 2 on a bad command line. Without --once: 0 after SIGINT/SIGTERM, 1 if it
cannot start.

Flags:
  --server URL             the dpkeyring server (default $DPKEYRING_SERVER)
  --token-file F           file holding a node token (one final newline ignored); keep it mode
                           0600 (or 0440 with a group, as a Kubernetes Secret with fsGroup); a
                           warning is logged if all users can read it (default
                           $DPKEYRING_TOKEN_FILE)
  --ring R                 the ring (default "default")
  --dir DIR                the key folder (created with mode 0700 if missing)
  --node-id ID             sent as X-Node-Id, so the server's status shows this node and the
                           ring version it holds (default: the host name)
  --once                   sync once and exit (init containers, cron)
  --wait D                 long-poll wait of each request (default 60s; the server caps it)
  --min-backoff D, --max-backoff D
                           retry delays after a failure (default 500ms and 30s)
  --timeout D              with --once: retry an unavailable server (network error, 5xx, 429;
                           with the backoff above) for at most this long (default 30s)
  --health-addr HOST:PORT  serve GET /healthz: JSON with ok, the last sync and contact times,
                           the ring version held and the agent version; 200 when the server was
                           reached within --health-max-age and the folder loads as a key ring,
                           else 503
  --health-file F          rewritten (JSON, same fields) after each successful contact with the
                           server (each long-poll answer: at least every --wait while healthy);
                           probes check its age
  --health-max-age D       see --health-addr (default 5m)
  --tls-ca FILE            PEM CA bundle to verify the server's certificate (default: system roots)
`

// agentStateFile is the agent's record of what it wrote, in DIR. It does not end in ".xml", so
// FileSystemXmlRepository does not read it.
const agentStateFile = ".dpkeyring-agent.json"

type agentFlags struct {
	server, tokenFile, ring, dir, nodeID, tlsCA, healthAddr, healthFile string
	once                                                                bool
	wait, minBackoff, maxBackoff, timeout, healthMaxAge                 time.Duration
}

func (c *cli) agent(ctx context.Context, args []string) error {
	const name = "agent"
	fs := newFlagSet(name)
	var f agentFlags
	fs.StringVar(&f.server, "server", c.getenv("DPKEYRING_SERVER"), "")
	fs.StringVar(&f.tokenFile, "token-file", c.getenv("DPKEYRING_TOKEN_FILE"), "")
	fs.StringVar(&f.ring, "ring", "default", "")
	fs.StringVar(&f.dir, "dir", "", "")
	fs.StringVar(&f.nodeID, "node-id", "", "")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "")
	fs.StringVar(&f.healthAddr, "health-addr", "", "")
	fs.StringVar(&f.healthFile, "health-file", "", "")
	fs.BoolVar(&f.once, "once", false, "")
	fs.DurationVar(&f.wait, "wait", client.DefaultWait, "")
	fs.DurationVar(&f.minBackoff, "min-backoff", client.DefaultMinBackoff, "")
	fs.DurationVar(&f.maxBackoff, "max-backoff", client.DefaultMaxBackoff, "")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "")
	fs.DurationVar(&f.healthMaxAge, "health-max-age", 5*time.Minute, "")
	pos, err := c.parseFlags(fs, agentUsage, args)
	if err != nil || pos == nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usageErrorf(name, "unexpected argument %q", pos[0])
	case f.server == "":
		return usageErrorf(name, "--server URL is required")
	case f.tokenFile == "":
		return usageErrorf(name, "--token-file is required")
	case f.dir == "":
		return usageErrorf(name, "--dir is required")
	case f.wait < time.Second:
		return usageErrorf(name, "--wait must be at least 1s")
	case f.minBackoff <= 0 || f.maxBackoff < f.minBackoff:
		return usageErrorf(name, "--min-backoff must be positive and at most --max-backoff")
	case f.timeout <= 0 || f.healthMaxAge <= 0:
		return usageErrorf(name, "--timeout and --health-max-age must be positive")
	}
	if err := store.ValidRingName(f.ring); err != nil {
		return usageErrorf(name, "--ring: %v", err)
	}
	if f.nodeID == "" {
		f.nodeID = defaultNodeID()
	} else if !agentNodeIDRE.MatchString(f.nodeID) {
		return usageErrorf(name, "--node-id %q: want 1-128 of A-Z a-z 0-9 . _ : @ / -", f.nodeID)
	}
	if strings.EqualFold(filepath.Ext(f.healthFile), ".xml") && filepath.Clean(filepath.Dir(f.healthFile)) == filepath.Clean(f.dir) {
		return usageErrorf(name, "--health-file must not be an *.xml file in --dir: ASP.NET Core would read it as a key")
	}
	logger := slog.New(slog.NewJSONHandler(c.stderr, nil)).With("ring", f.ring)
	// Group read is fine (Kubernetes mounts Secrets with fsGroup as 0440); read by others is not.
	if fi, err := os.Stat(f.tokenFile); err == nil && fi.Mode().Perm()&0o004 != 0 {
		logger.Warn("token file is readable by all users (the others read bit, o+r, is set); chmod o-r it",
			"file", f.tokenFile, "mode", fi.Mode().Perm().String())
	}
	opts := []client.Option{client.WithTokenFile(f.tokenFile)}
	if f.nodeID != "" {
		opts = append(opts, client.WithNodeID(f.nodeID))
	}
	if f.tlsCA != "" {
		opts = append(opts, client.WithTLSCA(f.tlsCA))
	}
	cl, err := client.New(f.server, opts...)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a := &agent{flags: f, client: cl, log: logger, now: c.now}
	if f.once {
		ctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		return a.syncOnce(ctx)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	return a.run(ctx)
}

var agentNodeIDRE = regexp.MustCompile(`^[A-Za-z0-9._:@/-]{1,128}$`)

// defaultNodeID is the host name when it is a valid node id, else "" (the server then uses the
// token's name).
func defaultNodeID() string {
	h, err := os.Hostname()
	if err != nil || !agentNodeIDRE.MatchString(h) {
		return ""
	}
	return h
}

// agentState is the JSON of DIR/.dpkeyring-agent.json.
type agentState struct {
	Ring    string    `json:"ring"`
	Server  string    `json:"server"`
	Version uint64    `json:"version"`
	Synced  time.Time `json:"synced"`
	// Written are the element names (file names without ".xml") the agent created, sorted.
	Written []string `json:"written"`
}

// agent keeps one folder equal to one ring.
type agent struct {
	flags  agentFlags
	client *client.Client
	log    *slog.Logger
	now    func() time.Time

	mu          sync.Mutex
	state       agentState
	stateLoaded bool
	lastContact time.Time // last successful answer of the server (or the state file's sync time)
	lastError   string
	conflicts   []string // files that differ from the served element
	folderErr   string   // why the folder does not load as a key ring, or ""
	failing     bool
}

// syncOnce reads the ring and syncs the folder. While the server is unavailable (network error,
// 5xx, 429) it retries with the agent's backoff and jitter until ctx ends (--timeout); any other
// answer (401, 404 ...) fails at once.
func (a *agent) syncOnce(ctx context.Context) error {
	if err := a.loadState(); err != nil {
		return err
	}
	doc, err := a.fetchRetrying(ctx)
	if err != nil {
		a.log.Error("sync failed; the folder is left as it is", "error", err.Error())
		return fmt.Errorf("agent: ring %s: %w", a.flags.ring, err)
	}
	if err := a.sync(doc); err != nil {
		return fmt.Errorf("agent: ring %s: %w", a.flags.ring, err)
	}
	a.contact(doc)
	h := a.health()
	if len(h.Conflicts) > 0 {
		return fmt.Errorf("agent: ring %s: %d file(s) differ from the served elements and were left as they are: %s",
			a.flags.ring, len(h.Conflicts), strings.Join(h.Conflicts, ", "))
	}
	if h.FolderError != "" {
		return fmt.Errorf("agent: ring %s: the folder does not load as a key ring: %s", a.flags.ring, h.FolderError)
	}
	return nil
}

// fetchRetrying reads the ring, retrying while the server is unavailable until ctx ends. Its
// error after ctx ended says how long and how often it tried, with the last request's error.
func (a *agent) fetchRetrying(ctx context.Context) (*client.RingDoc, error) {
	start := time.Now()
	backoff := a.flags.minBackoff
	var lastErr error
	for tries := 1; ; tries++ {
		doc, err := a.client.Fetch(ctx, a.flags.ring, "")
		if doc != nil {
			if err != nil { // read, but not written to a cache directory (the agent sets none)
				a.log.Warn("ring read with an error", "error", err.Error())
			}
			return doc, nil
		}
		if !errors.Is(err, client.ErrUnavailable) {
			return nil, err
		}
		if ctx.Err() == nil || lastErr == nil {
			lastErr = err // keep the cause, not the cut-off of the last try
		}
		if ctx.Err() == nil {
			d := agentJitter(backoff)
			backoff = min(2*backoff, a.flags.maxBackoff)
			a.log.Warn("sync failed; the folder is left as it is", "error", err.Error(), "retry_in", d.Round(time.Millisecond).String())
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("server not reached within --timeout %s (%d tries, %s): %w",
				a.flags.timeout, tries, time.Since(start).Round(100*time.Millisecond), lastErr)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("stopped before the server was reached (%d tries): %w", tries, lastErr)
		}
	}
}

// agentJitter returns a random duration in [d/2, d], as the client's Watch does, so that many
// agents retrying at once spread out.
func agentJitter(d time.Duration) time.Duration {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil || d < 2 {
		return d
	}
	half := d / 2
	return half + time.Duration(binary.BigEndian.Uint64(b[:])%uint64(d-half+1))
}

// run follows the ring until ctx ends.
func (a *agent) run(ctx context.Context) error {
	if err := a.loadState(); err != nil {
		return err
	}
	if err := os.MkdirAll(a.flags.dir, 0o700); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if a.flags.healthAddr != "" {
		ln, err := net.Listen("tcp", a.flags.healthAddr)
		if err != nil {
			return fmt.Errorf("agent: health listener: %w", err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(a.serveHealth), ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		a.log.Info("health endpoint listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String()+"/healthz")
	}
	a.log.Info("agent started", "server", a.flags.server, "dir", a.flags.dir, "node_id", a.flags.nodeID,
		"version_held", a.state.Version, "files_written_before", len(a.state.Written), "agent_version", versionString())
	err := a.client.Watch(ctx, a.flags.ring, a.sync, client.WatchOptions{
		Wait:       a.flags.wait,
		MinBackoff: a.flags.minBackoff,
		MaxBackoff: a.flags.maxBackoff,
		SkipCached: true,
		OnError:    a.failed,
		OnContact:  a.contact,
	})
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		a.log.Info("agent stopped")
		return nil
	}
	return err
}

// failed records a failed request or sync.
func (a *agent) failed(err error, retryIn time.Duration) {
	a.mu.Lock()
	a.lastError = err.Error()
	a.failing = true
	a.mu.Unlock()
	a.log.Warn("sync failed; the folder is left as it is", "error", err.Error(), "retry_in", retryIn.Round(time.Millisecond).String())
}

// contact records a successful answer of the server and refreshes the health file.
func (a *agent) contact(doc *client.RingDoc) {
	a.mu.Lock()
	a.lastContact = a.now()
	recovered := a.failing
	a.failing = false
	a.lastError = ""
	a.mu.Unlock()
	if recovered {
		a.log.Info("server reachable again", "version", doc.Version)
	}
	if a.flags.healthFile != "" {
		b, _ := json.Marshal(a.health())
		if err := agentReplaceFile(a.flags.healthFile, append(b, '\n')); err != nil {
			a.log.Warn("cannot write the health file", "file", a.flags.healthFile, "error", err.Error())
		}
	}
}

// agentHealth is the JSON of /healthz and of the health file.
type agentHealth struct {
	OK           bool      `json:"ok"`
	Ring         string    `json:"ring"`
	RingVersion  uint64    `json:"ring_version"`
	LastSync     time.Time `json:"last_sync,omitzero"`
	LastContact  time.Time `json:"last_contact,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	Conflicts    []string  `json:"conflicts,omitempty"`
	FolderError  string    `json:"folder_error,omitempty"`
	FilesWritten int       `json:"files_written"`
	AgentVersion string    `json:"agent_version"`
}

func (a *agent) health() agentHealth {
	a.mu.Lock()
	defer a.mu.Unlock()
	return agentHealth{
		OK:           !a.lastContact.IsZero() && a.now().Sub(a.lastContact) <= a.flags.healthMaxAge && a.folderErr == "",
		Ring:         a.flags.ring,
		RingVersion:  a.state.Version,
		LastSync:     a.state.Synced,
		LastContact:  a.lastContact,
		LastError:    a.lastError,
		Conflicts:    slices.Clone(a.conflicts),
		FolderError:  a.folderErr,
		FilesWritten: len(a.state.Written),
		AgentVersion: versionString(),
	}
}

func (a *agent) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/healthz" {
		http.NotFound(w, r)
		return
	}
	h := a.health()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !h.OK {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(h)
}

// loadState reads DIR/.dpkeyring-agent.json if present.
func (a *agent) loadState() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stateLoaded {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(a.flags.dir, agentStateFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("agent: state file: %w", err)
	default:
		var st agentState
		if err := json.Unmarshal(b, &st); err != nil {
			a.log.Warn("state file unreadable; starting a new one", "file", agentStateFile, "error", err.Error())
		} else if st.Ring == a.flags.ring {
			a.state = st
			a.lastContact = st.Synced
		}
	}
	a.state.Ring = a.flags.ring
	a.stateLoaded = true
	return nil
}

// sync writes every served element the folder lacks. It never deletes, renames or rewrites a
// file. A file whose content differs from the served element is reported as a conflict (logged,
// in /healthz) and left as is; I/O errors fail the sync, which is retried.
func (a *agent) sync(doc *client.RingDoc) error {
	dir := a.flags.dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	var written, conflicts []string
	for _, el := range doc.Elements {
		if err := store.ValidElementName(el.Name); err != nil || !(strings.HasPrefix(el.Name, "key-") || strings.HasPrefix(el.Name, "revocation-")) {
			a.log.Warn("element skipped: neither a key nor a revocation", "element", el.Name)
			continue
		}
		want, err := keyring.FileXML(el.XML)
		if err != nil {
			a.log.Warn("element skipped: not well-formed XML", "element", el.Name)
			continue
		}
		path := filepath.Join(dir, el.Name+".xml")
		created, err := agentCreateFile(path, want)
		if err != nil {
			return fmt.Errorf("agent: writing %s: %w", path, err)
		}
		if created {
			written = append(written, el.Name)
			continue
		}
		same, err := agentSameElement(path, el.XML)
		if err != nil {
			return fmt.Errorf("agent: reading %s: %w", path, err)
		}
		if !same {
			conflicts = append(conflicts, el.Name+".xml")
		}
	}

	folderErr := checkKeyFolder(dir)

	a.mu.Lock()
	prevVersion := a.state.Version
	a.folderErr = ""
	if folderErr != nil {
		a.folderErr = folderErr.Error()
	}
	a.state.Server = a.flags.server
	a.state.Version = doc.Version
	a.state.Synced = a.now().UTC()
	for _, n := range written {
		if !slices.Contains(a.state.Written, n) {
			a.state.Written = append(a.state.Written, n)
		}
	}
	slices.Sort(a.state.Written)
	a.conflicts = conflicts
	st := a.state
	st.Written = slices.Clone(a.state.Written)
	a.mu.Unlock()

	b, _ := json.MarshalIndent(st, "", "  ")
	if err := agentReplaceFile(filepath.Join(dir, agentStateFile), append(b, '\n')); err != nil {
		return fmt.Errorf("agent: state file: %w", err)
	}
	for _, n := range conflicts {
		a.log.Error("file differs from the served element; left as is", "file", n)
	}
	if folderErr != nil {
		a.log.Error("the folder does not load as a key ring; ASP.NET Core would fail to read it", "error", folderErr.Error())
	}
	a.log.Info("synced", "version", doc.Version, "previous_version", prevVersion, "elements", len(doc.Elements),
		"files_created", len(written), "created", written, "conflicts", len(conflicts))
	return nil
}

// checkKeyFolder loads the folder as ASP.NET Core's FileSystemXmlRepository and XmlKeyManager
// do (every *.xml file at the top level, keyring.ParseElements): a file that is not well-formed
// XML, an unreadable revocation or two keys with one id fail the whole ring there.
func checkKeyFolder(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil {
		return err
	}
	elems := make([][]byte, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		elems = append(elems, b)
	}
	_, err = keyring.ParseElements(elems, keyring.ParseOptions{})
	return err
}

// agentSameElement reports whether the file at path holds the element (compared in compact form, as
// the stores compare elements). An unreadable or malformed file is not the same.
func agentSameElement(path string, element []byte) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(err, syscall.EISDIR) {
			return false, nil
		}
		return false, err
	}
	got, err := keyring.CompactXML(b)
	if err != nil {
		return false, nil
	}
	want, err := keyring.CompactXML(element)
	if err != nil {
		return false, nil
	}
	return bytes.Equal(got, want), nil
}

// agentWriteTemp writes data to a new temporary file in dir (mode 0600) and fsyncs it. Its name
// does not end in .xml, so FileSystemXmlRepository ignores it.
func agentWriteTemp(dir string, data []byte) (string, error) {
	return atomicfile.WriteTemp(dir, ".dpkeyring-", ".tmp", data)
}

// agentCreateFile creates path with data atomically and only if it does not exist: a fsynced
// temporary file is hard-linked to path (which fails if path exists), removed, and the directory
// fsynced. Where hard links are not supported it renames the temporary file after checking that
// path does not exist (only this agent writes the folder). created is false when path existed.
func agentCreateFile(path string, data []byte) (created bool, err error) {
	if _, err := os.Lstat(path); err == nil {
		return false, nil
	}
	dir := filepath.Dir(path)
	tmp, err := agentWriteTemp(dir, data)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		if _, serr := os.Lstat(path); serr == nil {
			return false, nil
		}
		if err := os.Rename(tmp, path); err != nil {
			return false, err
		}
	}
	return true, atomicfile.SyncDir(dir)
}

// agentReplaceFile replaces path with data (temporary file, fsync, rename, directory fsync).
func agentReplaceFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := agentWriteTemp(dir, data)
	if err != nil {
		return err
	}
	if err := atomicfile.Replace(tmp, path); err != nil {
		return err
	}
	return atomicfile.SyncDir(dir)
}
