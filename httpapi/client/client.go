package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// Sentinel errors.
var (
	// ErrUnavailable reports a server that cannot answer now: a network error, a timeout, or a
	// 5xx or 429 answer. [Client.Get] falls back to the cache on it; [Client.Watch] retries.
	ErrUnavailable = errors.New("client: server unavailable")
	// ErrNotCached reports a ring the client has not seen and its cache does not hold.
	ErrNotCached = errors.New("client: ring not cached")
	// ErrBadResponse reports an answer that is not a usable ring (unexpected status, malformed
	// document, a ring that cannot be parsed).
	ErrBadResponse = errors.New("client: bad response from server")
	// ErrInvalidOption reports a bad argument of [New] or of a method (URL, token, node id,
	// ring name, purpose).
	ErrInvalidOption = errors.New("client: invalid option")
)

// ResponseError is a non-2xx, non-304 answer of the server with its JSON error. It wraps
// [ErrUnavailable] for 5xx and 429 answers and [ErrBadResponse] otherwise (401, 403, 404 ...).
type ResponseError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the API error code ("unauthorized", "ring_not_found" ...), or "".
	Code string
	// Message is the server's error message, or the start of the body.
	Message string
}

// Error implements error.
func (e *ResponseError) Error() string {
	msg := fmt.Sprintf("client: server answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	return msg
}

// Unwrap returns [ErrUnavailable] or [ErrBadResponse].
func (e *ResponseError) Unwrap() error {
	if e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests {
		return ErrUnavailable
	}
	return ErrBadResponse
}

// requestTimeout bounds a request beyond its long-poll wait.
const requestTimeout = 30 * time.Second

// maxDocumentBytes bounds a ring document read from the server or the cache.
const maxDocumentBytes = 32 << 20

// Client reads key rings from one dpkeyring server. It is safe for concurrent use. It keeps the
// last [RingDoc] of each ring it read, in memory and, with [WithCacheDir], on disk.
type Client struct {
	base      *url.URL
	token     string
	nodeID    string
	http      *http.Client
	tlsCA     string
	cacheDir  string
	parseOpts keyring.ParseOptions
	now       func() time.Time

	mu   sync.Mutex
	docs map[string]*RingDoc // the last document of each ring
}

// Option configures a [Client].
type Option func(*Client) error

// WithToken sets the bearer token (a node token, or an admin token).
func WithToken(token string) Option {
	return func(c *Client) error {
		c.token = strings.TrimSpace(token)
		return nil
	}
}

// WithTokenFile reads the bearer token from a file (one final newline is ignored). The file
// should have mode 0600.
func WithTokenFile(path string) Option {
	return func(c *Client) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%w: token file: %w", ErrInvalidOption, err)
		}
		c.token = strings.TrimSpace(string(b))
		if c.token == "" {
			return fmt.Errorf("%w: token file %s is empty", ErrInvalidOption, path)
		}
		return nil
	}
}

var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9._:@/-]{1,128}$`)

// WithNodeID sets the X-Node-Id the server records with the ring version this client holds
// (its status endpoint shows every node's convergence). The default is the token's name.
func WithNodeID(id string) Option {
	return func(c *Client) error {
		if !nodeIDRE.MatchString(id) {
			return fmt.Errorf("%w: node id %q: want 1-128 of A-Z a-z 0-9 . _ : @ / -", ErrInvalidOption, id)
		}
		c.nodeID = id
		return nil
	}
}

// WithHTTPClient sets the HTTP client. Its Timeout must be 0 or longer than the long-poll
// waits; the client bounds each request with its context instead.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return fmt.Errorf("%w: nil http.Client", ErrInvalidOption)
		}
		c.http = hc
		return nil
	}
}

// WithTLSCA verifies the server's certificate against the PEM CA bundle in path instead of the
// system roots. It replaces the transport of the HTTP client.
func WithTLSCA(path string) Option {
	return func(c *Client) error {
		c.tlsCA = path
		return nil
	}
}

// WithCacheDir keeps the last ring of each ring name in dir (created with mode 0700; files
// ring-NAME.json, mode 0600, written atomically), so [Client.Get] and [Client.Watch] can start
// from it while the server is unreachable. The files hold key material.
func WithCacheDir(dir string) Option {
	return func(c *Client) error {
		c.cacheDir = dir
		return nil
	}
}

// WithParseOptions sets how served keys are parsed, for master keys protected with a
// certificate ([keyring.ParseOptions]).
func WithParseOptions(opts keyring.ParseOptions) Option {
	return func(c *Client) error {
		c.parseOpts = opts
		return nil
	}
}

// WithClock sets the clock that decides the default key (and so the codec that encodes); the
// default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *Client) error {
		c.now = now
		return nil
	}
}

// New returns a client of the dpkeyring server at baseURL (http or https, optionally with a
// path prefix). It returns an error wrapping [ErrInvalidOption] for a bad URL or option.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: server URL %q: want http(s)://HOST[:PORT][/PATH]", ErrInvalidOption, baseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: server URL must not hold user info, a query or a fragment", ErrInvalidOption)
	}
	c := &Client{base: u, http: &http.Client{}, now: time.Now, docs: map[string]*RingDoc{}}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.token == "" {
		return nil, fmt.Errorf("%w: a token is required (WithToken or WithTokenFile)", ErrInvalidOption)
	}
	if strings.ContainsAny(c.token, " \t\r\n") {
		return nil, fmt.Errorf("%w: the token holds white space; the token file must hold only the token", ErrInvalidOption)
	}
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("%w: TLS CA: %w", ErrInvalidOption, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: TLS CA: no PEM certificate in %s", ErrInvalidOption, c.tlsCA)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		hc := *c.http
		hc.Transport = tr
		c.http = &hc
	}
	return c, nil
}

// Fetch reads ring from the server. With haveETag (the ETag of a [RingDoc] this client returned)
// it asks conditionally: when the ring has not changed the server answers 304 and Fetch returns
// the document it already holds (the same pointer). A haveETag of a document the client does not
// hold is ignored (the whole ring is read). Errors: [ErrUnavailable] (network, 5xx, 429), a
// [*ResponseError] (401, 403, 404 ...), [ErrBadResponse] (a document that cannot be read). When
// the ring was read but could not be written to the cache directory, it returns the document
// and that error.
func (c *Client) Fetch(ctx context.Context, ring, haveETag string) (*RingDoc, error) {
	return c.Poll(ctx, ring, haveETag, 0)
}

// Poll is [Client.Fetch] with the server's long-poll: with haveETag and wait > 0 the server
// answers as soon as the ring changes or when wait ends (304: the document held is returned,
// with the same ETag). The server caps wait (120 s by default). Each request is bounded by
// ctx and by wait + 30 s.
func (c *Client) Poll(ctx context.Context, ring, haveETag string, wait time.Duration) (*RingDoc, error) {
	if err := store.ValidRingName(ring); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	var held *RingDoc
	if haveETag != "" {
		held, _ = c.Cached(ring)
		if held == nil || held.ETag != haveETag {
			// Not a document we hold: ask for the whole ring.
			held, haveETag, wait = nil, "", 0
		}
	}
	u := c.base.JoinPath("v1", "rings", ring, "keys")
	if wait > 0 {
		u.RawQuery = url.Values{"wait": {wait.String()}}.Encode()
	}
	// A server that accepts the connection but never answers must not hang the caller.
	ctx, cancel := context.WithTimeout(ctx, wait+requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/xml")
	req.Header.Set("User-Agent", "dpkeyring-client")
	if c.nodeID != "" {
		req.Header.Set("X-Node-Id", c.nodeID)
	}
	if haveETag != "" {
		req.Header.Set("If-None-Match", haveETag)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error names the method and URL; the token is in a header and never printed.
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		if held == nil {
			return nil, fmt.Errorf("%w: 304 to an unconditional request", ErrBadResponse)
		}
		return held, nil
	case http.StatusOK:
	default:
		return nil, responseError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading ring %s: %w", ErrUnavailable, ring, err)
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("%w: ring %s document larger than %d bytes", ErrBadResponse, ring, maxDocumentBytes)
	}
	etag := resp.Header.Get("ETag")
	version, err := strconv.ParseUint(resp.Header.Get("X-Ring-Version"), 10, 64)
	if err != nil {
		version, err = strconv.ParseUint(strings.Trim(strings.TrimPrefix(etag, "W/"), `"`), 10, 64)
	}
	if err != nil || etag == "" {
		return nil, fmt.Errorf("%w: ring %s answered without a version ETag", ErrBadResponse, ring)
	}
	doc, err := c.newDoc(ring, version, etag, body, c.now())
	if err != nil {
		return nil, err
	}
	c.remember(doc)
	if c.cacheDir != "" {
		if err := c.writeCache(doc); err != nil {
			return doc, fmt.Errorf("client: ring %s read, but not cached: %w", ring, err)
		}
	}
	return doc, nil
}

// responseError reads the JSON error of a failed answer.
func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &ResponseError{StatusCode: resp.StatusCode}
	var j struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(b, &j) == nil && j.Error != "" {
		e.Message, e.Code = j.Error, j.Code
	} else {
		s := strings.Join(strings.Fields(string(b)), " ")
		if len(s) > 200 {
			s = strings.ToValidUTF8(s[:200], "") + "..."
		}
		e.Message = s
	}
	return e
}

// remember keeps doc as the last document of its ring. The last one read wins, even with a
// lower version (a server whose store was replaced).
func (c *Client) remember(doc *RingDoc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.docs[doc.Ring] = doc
}

// Cached returns the last document of ring this client read, else the one in its cache
// directory. It returns an error wrapping [ErrNotCached] if there is none, or the error reading
// the cache file.
func (c *Client) Cached(ring string) (*RingDoc, error) {
	c.mu.Lock()
	doc, ok := c.docs[ring]
	c.mu.Unlock()
	if ok {
		return doc, nil
	}
	if c.cacheDir == "" {
		return nil, fmt.Errorf("%w: %s", ErrNotCached, ring)
	}
	if err := store.ValidRingName(ring); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	doc, err := c.readCache(ring)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if held, ok := c.docs[ring]; ok {
		return held, nil
	}
	c.docs[ring] = doc
	return doc, nil
}

// Get returns ring: from the server (conditionally on the document held), or, when the server
// is unavailable ([ErrUnavailable]), the last document held or cached on disk, marked Stale. It
// returns the server's error when there is nothing to fall back to, and does not fall back on
// answers such as 401 or 404.
func (c *Client) Get(ctx context.Context, ring string) (*RingDoc, error) {
	var have string
	held, _ := c.Cached(ring)
	if held != nil {
		have = held.ETag
	}
	doc, err := c.Fetch(ctx, ring, have)
	if doc != nil {
		return doc, nil // a cache write failure still returns the fresh ring
	}
	if held != nil && errors.Is(err, ErrUnavailable) {
		stale := *held
		stale.Stale = true
		return &stale, nil
	}
	return nil, err
}
