package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/ringcache"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/go-chi/chi/v5"
)

const (
	contentTypeXML  = "application/xml; charset=utf-8"
	contentTypeJSON = "application/json"
	// warningStale is the Warning header sent with a ring served from memory while the store
	// fails (RFC 7234 warn-code 110, "Response is Stale").
	warningStale = `110 - "stale: store unavailable"`
	// warningUnusable is sent when the store holds a newer ring version that is not served
	// because it has no usable key or cannot be read.
	warningUnusable = `110 - "stale: newer ring version not usable"`
)

// ringParam returns the {ring} of the route after checking that the caller has one of roles
// and is granted the ring (403), and that the ring is served (404).
func (h *handler) ringParam(r *http.Request, roles ...Role) (string, Principal, error) {
	return h.checkRing(r, chi.URLParam(r, "ring"), roles...)
}

// checkRing checks that the caller has one of roles and is granted ring (403), and that the
// ring is served (404).
func (h *handler) checkRing(r *http.Request, ring string, roles ...Role) (string, Principal, error) {
	p, err := authorize(r, ring, roles...)
	if err != nil {
		return "", p, err
	}
	if _, ok := h.rings[ring]; !ok {
		return "", p, errorf(http.StatusNotFound, codeRingNotFound, "ring %q is not served here", ring)
	}
	return ring, p, nil
}

// setStale adds the Warning header when the ring may be out of date.
func (h *handler) setStale(w http.ResponseWriter, ring string) {
	hl := h.cfg.Cache.Health(ring)
	if !hl.Stale() {
		return
	}
	if errors.Is(hl.Err, ringcache.ErrUnusableRing) {
		w.Header().Set("Warning", warningUnusable)
		return
	}
	w.Header().Set("Warning", warningStale)
}

// listRings answers GET /v1/rings: the served rings the token is granted.
func (h *handler) listRings(w http.ResponseWriter, r *http.Request) error {
	p, ok := principalFrom(r.Context())
	if !ok {
		return errorf(http.StatusUnauthorized, codeUnauthorized, "a bearer token is required")
	}
	type ringJSON struct {
		Name    string `json:"name"`
		Version uint64 `json:"version,omitempty"`
		Loaded  bool   `json:"loaded"`
		Stale   bool   `json:"stale"`
	}
	out := struct {
		Rings []ringJSON `json:"rings"`
	}{Rings: []ringJSON{}}
	for _, ring := range h.cfg.Rings {
		if !p.AllowsRing(ring.Name) {
			continue
		}
		hl := h.cfg.Cache.Health(ring.Name)
		out.Rings = append(out.Rings, ringJSON{Name: ring.Name, Version: hl.Version, Loaded: hl.Loaded, Stale: hl.Stale()})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getKeys answers GET /v1/rings/{ring}/keys: the ring as a repository document (or JSON), with
// ETag, If-None-Match and the ?wait= long-poll.
func (h *handler) getKeys(w http.ResponseWriter, r *http.Request) error {
	return h.serveKeys(w, r, chi.URLParam(r, "ring"))
}

// serveKeys is [handler.getKeys] for the ring named in the path; the fast path
// ([handler.withFastPath]) calls it directly.
func (h *handler) serveKeys(w http.ResponseWriter, r *http.Request, ring string) error {
	ring, p, err := h.checkRing(r, ring, RoleNode, RoleAdmin)
	if err != nil {
		return err
	}
	node, err := nodeID(r, p)
	if err != nil {
		return err
	}
	var waitParam string
	if r.URL.RawQuery != "" {
		waitParam = r.URL.Query().Get("wait")
	}
	wait, err := parseWait(waitParam, h.cfg.MaxWait)
	if err != nil {
		return err
	}
	have, haveOK, err := requestedVersions(r)
	if err != nil {
		return err
	}
	asJSON := prefersJSON(r.Header.Get("Accept"))
	// The XML document also exists gzip-compressed (made once per version); the JSON form,
	// made per request, is sent as it is.
	gz := !asJSON && acceptsGzip(r.Header["Accept-Encoding"])

	e, err := h.cfg.Cache.Get(ring)
	if wait > 0 && haveOK && (err != nil || have.contains(e.Version)) {
		waitFor := have.first() // not loaded yet: wait for a first version other than it
		if err == nil {
			waitFor = e.Version
		}
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		h.metrics.waiting.Inc()
		e, err = h.cfg.Cache.Wait(ctx, ring, waitFor)
		h.metrics.waiting.Dec()
		cancel()
		// The wait ended without a change (timeout, client gone, or server shutting down): answer
		// 304 so that the client simply asks again, here or on another replica.
		if err != nil && !errors.Is(err, ringcache.ErrNotLoaded) &&
			(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
			err = nil
		}
	}
	if err != nil {
		return err
	}

	// The document and the header values are made once per ring version (renderCache) and
	// shared by every answer: a GET is a map lookup and one Write.
	rr, err := h.render.get(e)
	if err != nil {
		return err
	}
	h.setStale(w, ring)
	hdr := w.Header()
	switch {
	case asJSON:
		hdr["Etag"] = rr.etagJSON
	case gz:
		hdr["Etag"] = rr.etagGzip
	default:
		hdr["Etag"] = rr.etagXML
	}
	hdr["Cache-Control"] = headerNoCache
	hdr["Vary"] = headerVaryAcceptEncoding
	hdr["X-Ring-Version"] = rr.version
	h.nodes.seen(ring, node, e.Version, h.cfg.Now())
	if haveOK && have.contains(e.Version) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if asJSON {
		writeJSON(w, http.StatusOK, h.ringJSON(e))
		return nil
	}
	hdr["Content-Type"] = headerContentTypeXML
	if gz {
		z := rr.gzipped()
		hdr["Content-Encoding"] = headerGzip
		hdr["Content-Length"] = z.length
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(z.doc)
		return nil
	}
	hdr["Content-Length"] = rr.length
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(rr.doc)
	return nil
}

// acceptsGzip reports whether the Accept-Encoding header values accept gzip (RFC 9110 §12.5.3):
// "gzip", "x-gzip" or "*" with a quality other than 0, unless gzip itself is listed with q=0.
// Anything malformed counts as not accepting it.
func acceptsGzip(values []string) bool {
	star, listed := false, 0 // listed: 0 gzip not listed, 1 accepted, -1 refused
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			coding = strings.TrimSpace(coding)
			ok := qualityNonZero(params)
			switch {
			case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
				if ok {
					listed = max(listed, 1)
				} else {
					listed = -1
				}
			case coding == "*":
				star = star || ok
			}
		}
	}
	return listed == 1 || (listed == 0 && star)
}

// qualityNonZero reports whether the parameters of an Accept-Encoding item (after the first
// ';') give it a quality above 0. No q parameter is quality 1; a malformed one counts as 0.
func qualityNonZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		name, value, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		return err == nil && q > 0 && q <= 1
	}
	return true
}

// Header values shared by every ring answer (net/http only reads them; each has cap 1 so an
// Add by anyone would copy, never write into the shared array).
var (
	headerNoCache            = []string{"no-cache"}
	headerVaryAcceptEncoding = []string{"Accept, Accept-Encoding"}
	headerContentTypeXML     = []string{contentTypeXML}
	headerGzip               = []string{"gzip"}
)

// getKey answers GET /v1/rings/{ring}/keys/{id}: one key element, as XML or JSON.
func (h *handler) getKey(w http.ResponseWriter, r *http.Request) error {
	ring, _, err := h.ringParam(r, RoleNode, RoleAdmin)
	if err != nil {
		return err
	}
	id, err := keyring.ParseKeyID(chi.URLParam(r, "id"))
	if err != nil {
		return errorf(http.StatusBadRequest, codeBadRequest, "the key id must be a GUID such as 3d6d01fd-c0e7-44ae-82dd-013b996b4093")
	}
	e, err := h.cfg.Cache.Get(ring)
	if err != nil {
		return err
	}
	h.setStale(w, ring)
	name := "key-" + id.String()
	for _, el := range e.Elements {
		if !strings.EqualFold(el.Name, name) {
			continue
		}
		if prefersJSON(r.Header.Get("Accept")) {
			writeJSON(w, http.StatusOK, describeElement(e, el.Name, el.XML, h.cfg.Now()))
			return nil
		}
		w.Header().Set("Content-Type", contentTypeXML)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(el.XML)
		return nil
	}
	return errorf(http.StatusNotFound, codeKeyNotFound, "key %s is not in ring %q", id, ring)
}

// etag returns the strong ETag of a ring version in one representation: "VERSION" for the XML
// document, "VERSION.gz" for it gzip-compressed, "VERSION.json" for the JSON one.
func etag(version uint64, suffix string) string {
	return `"` + strconv.FormatUint(version, 10) + suffix + `"`
}

// Suffixes of the ETags of the representations other than the XML document.
const (
	etagSuffixGzip = ".gz"
	etagSuffixJSON = ".json"
)

// versions is the set of ring versions a client says it has.
type versions []uint64

func (vs versions) contains(v uint64) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

func (vs versions) first() uint64 { return vs[0] }

// requestedVersions reads the versions the client has from If-None-Match (entity tags made by
// [etag] for any representation, weak or strong; others are ignored) and ?version=N. ok is
// false when there are none. A malformed ?version= is a 400.
func requestedVersions(r *http.Request) (vs versions, ok bool, err error) {
	inm := r.Header.Get("If-None-Match")
	for tag := range strings.SplitSeq(inm, ",") {
		if inm == "" {
			break
		}
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		tag = strings.TrimSuffix(strings.TrimPrefix(tag, `"`), `"`)
		tag = strings.TrimSuffix(strings.TrimSuffix(tag, etagSuffixJSON), etagSuffixGzip)
		if v, err := strconv.ParseUint(tag, 10, 64); err == nil {
			vs = append(vs, v)
		}
	}
	if r.URL.RawQuery == "" {
		return vs, len(vs) > 0, nil
	}
	if s := r.URL.Query().Get("version"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, false, errorf(http.StatusBadRequest, codeBadRequest, "version must be a ring version (a decimal number)")
		}
		vs = append(vs, v)
	}
	return vs, len(vs) > 0, nil
}

// parseWait reads ?wait=: a Go duration ("60s", "2m") or whole seconds ("60"), at most max
// (longer waits are capped). "" means no wait.
func parseWait(s string, max time.Duration) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseUint(s, 10, 32)
		if nerr != nil {
			return 0, errorf(http.StatusBadRequest, codeBadRequest, "wait must be a duration such as 60s")
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, errorf(http.StatusBadRequest, codeBadRequest, "wait must not be negative")
	}
	return min(d, max), nil
}

var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9._:@/-]{1,128}$`)

// nodeID returns the X-Node-Id header, or the token's name when absent. A malformed header is a
// 400.
func nodeID(r *http.Request, p Principal) (string, error) {
	v := r.Header.Get("X-Node-Id")
	if v == "" {
		return p.Name, nil
	}
	if !nodeIDRE.MatchString(v) {
		return "", errorf(http.StatusBadRequest, codeBadRequest, "X-Node-Id must be 1-128 of A-Z a-z 0-9 . _ : @ / -")
	}
	return v, nil
}

// prefersJSON reports whether the Accept header ranks application/json above the XML types
// (application/xml, text/xml); ties and absent headers mean XML, the form .NET reads.
func prefersJSON(accept string) bool {
	if accept == "" {
		return false
	}
	jsonQ, xmlQ := -1.0, -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, ok := splitMediaType(part)
		if !ok {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f <= 1 {
				q = f
			}
		}
		switch mt {
		case "application/json":
			jsonQ = max(jsonQ, q)
		case "application/xml", "text/xml":
			xmlQ = max(xmlQ, q)
		case "*/*", "application/*":
			xmlQ = max(xmlQ, q)
		}
	}
	return jsonQ > 0 && jsonQ > xmlQ
}

// splitMediaType returns the lowercased media type of one Accept or Content-Type item and its
// parameters.
func splitMediaType(s string) (string, map[string]string, bool) {
	parts := strings.Split(s, ";")
	mt := strings.ToLower(strings.TrimSpace(parts[0]))
	if mt == "" {
		return "", nil, false
	}
	params := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if ok {
			params[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return mt, params, true
}

// renderCache keeps, for each ring's current version, the repository document and the
// response header values that depend on the version.
type renderCache struct {
	mu sync.Mutex
	m  map[string]*renderedRing
}

// renderedRing is one ring version made ready to send. Its slices are shared by all answers and
// must not be modified.
type renderedRing struct {
	v        uint64
	doc      []byte
	length   []string // Content-Length of doc
	etagXML  []string // ETag of the XML document
	etagGzip []string // ETag of the gzip-compressed XML document
	etagJSON []string // ETag of the JSON document
	version  []string // X-Ring-Version

	// gzipped compresses doc once, on the first request that accepts gzip, so that a new
	// version costs nothing to readers that do not (and long-polls wake without waiting for it).
	gzipped func() gzippedDoc
}

// gzippedDoc is a ring document gzip-compressed, with its Content-Length.
type gzippedDoc struct {
	doc    []byte
	length []string
}

// gzipDocument compresses doc at the best level. Compressing keys is safe here: the answer holds
// nothing a client chooses, so there is no BREACH-style oracle (RFC 7457 §2.6) to guess secrets
// through the compressed length.
func gzipDocument(doc []byte) gzippedDoc {
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression) // a valid level: no error
	_, _ = zw.Write(doc)                                    // a bytes.Buffer does not fail
	_ = zw.Close()
	return gzippedDoc{doc: zb.Bytes(), length: []string{strconv.Itoa(zb.Len())}}
}

// get returns e's rendered version, made once per version.
func (c *renderCache) get(e ringcache.Entry) (*renderedRing, error) {
	c.mu.Lock()
	got, ok := c.m[e.Ring]
	c.mu.Unlock()
	if ok && got.v == e.Version {
		return got, nil
	}
	elems := make([][]byte, len(e.Elements))
	for i, el := range e.Elements {
		elems[i] = el.XML
	}
	doc, err := keyring.MarshalRepository(elems)
	if err != nil {
		return nil, err
	}
	rr := &renderedRing{
		v:        e.Version,
		doc:      doc,
		length:   []string{strconv.Itoa(len(doc))},
		etagXML:  []string{etag(e.Version, "")},
		etagGzip: []string{etag(e.Version, etagSuffixGzip)},
		etagJSON: []string{etag(e.Version, etagSuffixJSON)},
		version:  []string{strconv.FormatUint(e.Version, 10)},
		gzipped:  sync.OnceValue(func() gzippedDoc { return gzipDocument(doc) }),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*renderedRing)
	}
	if got, ok := c.m[e.Ring]; !ok || got.v < e.Version {
		c.m[e.Ring] = rr
	}
	return rr, nil
}

// elementJSON is one element of a ring in the JSON form.
type elementJSON struct {
	Name           string    `json:"name"`
	Kind           string    `json:"kind"`
	KeyID          string    `json:"key_id,omitempty"`
	Created        time.Time `json:"created,omitzero"`
	Activation     time.Time `json:"activation,omitzero"`
	Expiration     time.Time `json:"expiration,omitzero"`
	Status         string    `json:"status,omitempty"`
	Default        bool      `json:"default,omitempty"`
	RevocationDate time.Time `json:"revocation_date,omitzero"`
	Reason         string    `json:"reason,omitempty"`
	Error          string    `json:"error,omitempty"`
	XML            string    `json:"xml"`
}

type ringDocJSON struct {
	Ring     string        `json:"ring"`
	Version  uint64        `json:"version"`
	Elements []elementJSON `json:"elements"`
}

func (h *handler) ringJSON(e ringcache.Entry) ringDocJSON {
	now := h.cfg.Now()
	out := ringDocJSON{Ring: e.Ring, Version: e.Version, Elements: make([]elementJSON, 0, len(e.Elements))}
	var defaultID keyring.KeyID
	if k, err := e.Keys.DefaultKey(now); err == nil {
		defaultID = k.ID
	}
	for _, el := range e.Elements {
		j := describeElement(e, el.Name, el.XML, now)
		j.Default = j.Kind == "key" && j.KeyID == defaultID.String()
		out.Elements = append(out.Elements, j)
	}
	return out
}

// describeElement returns the JSON description of one stored element.
func describeElement(e ringcache.Entry, name string, xml []byte, now time.Time) elementJSON {
	j := elementJSON{Name: name, Kind: "unknown", XML: string(xml)}
	lower := strings.ToLower(name)
	switch {
	case strings.HasPrefix(lower, "key-"):
		j.Kind = "key"
		id, err := keyring.ParseKeyID(name[len("key-"):])
		if err != nil {
			j.Error = "the element name holds no key id"
			return j
		}
		j.KeyID = id.String()
		k, err := e.Keys.Key(id)
		if err != nil {
			j.Status = keyring.StatusUnknown.String()
			j.Error = "the key element could not be read"
			for _, s := range e.Keys.Skipped() {
				if strings.EqualFold(s.Name, name) && s.Err != nil {
					j.Error = s.Err.Error()
				}
			}
			return j
		}
		j.Created, j.Activation, j.Expiration = k.Created, k.Activation, k.Expiration
		j.Status = e.Keys.Status(k, now).String()
		if k.DescriptorErr != nil {
			j.Error = k.DescriptorErr.Error()
		}
	case strings.HasPrefix(lower, "revocation-"):
		j.Kind = "revocation"
		rev, err := keyring.ParseRevocation(xml)
		if err != nil {
			j.Error = err.Error()
			return j
		}
		j.KeyID = rev.KeyID.String()
		if rev.All {
			j.KeyID = "*"
		}
		j.RevocationDate, j.Reason = rev.Date, rev.Reason
	}
	return j
}
