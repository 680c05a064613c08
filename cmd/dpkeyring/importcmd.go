package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/audit"
	"github.com/dpkeyring/dpkeyring/internal/storespec"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

const importUsage = `usage: dpkeyring import --from SOURCE --to SPEC [--ring R] [--from-ring R]
                        [--cert FILE]... [--cert-password-file F] [--audit-log FILE] [--json]

Copies a key ring into a store without losing or altering any key. SOURCE is a node's key
folder (the PersistKeysToFileSystem layout), one element file, a <repository> document (the
Azure Blob layout), or a store spec (file:DIR, redis://… — e.g. the list an ASP.NET Core node
fills with PersistKeysToStackExchangeRedis —, vault://…). SPEC is a store spec.

Every element is appended create-only under the ring's writer lock: elements the destination
already holds are left as they are, so running the same import again changes nothing. The
source must load as ASP.NET Core would load it (no duplicate key ids, no malformed
revocations); elements that cannot be named are refused.

With --cert, keys whose master key is protected with a certificate
(ProtectKeysWithCertificate) are stored decrypted — same id, dates, algorithms and master key,
in the form current ASP.NET Core writes — so nodes without the certificate can use them.
Without --cert they are copied as they are, encrypted.

Flags:
  --from SOURCE          where the ring comes from (required)
  --to SPEC              the store to copy into (required)
  --ring R               the destination ring (default "default")
  --from-ring R          the source ring when SOURCE is a store spec (default: --ring)
  --cert FILE            certificate + private key (PEM or .pfx) to decrypt protected keys;
                         repeatable
  --cert-password-file F password of a .pfx file
  --audit-log FILE       append an audit record of the import (JSON line) to FILE; default
                         for a file: store, the server's DIR/audit.log; "-" for none
  --json                 print the summary as JSON
`

const exportUsage = `usage: dpkeyring export --from SOURCE [--ring R] [--out FILE]
                        (--plaintext | --encrypt-cert CERT) [--cert FILE]... [--cert-password-file F]

Writes a key ring as one <repository> document (the layout ASP.NET Core's Azure Blob
repository uses; dpkeyring import and keys list --keys read it back). SOURCE is a store spec, a
key folder, an element file or a <repository> document.

Key material is secret: the document holds master keys, so one of these is required:
  --plaintext            write unencrypted master keys as they are stored
  --encrypt-cert CERT    protect every unencrypted master key with this certificate (PEM,
                         public part is enough), as ProtectKeysWithCertificate does; nodes need
                         the private key to read them

Flags:
  --from SOURCE          where the ring comes from (required)
  --ring R               the ring when SOURCE is a store spec (default "default")
  --out FILE             the document to create, mode 0600 (default "-": standard output)
  --cert FILE, --cert-password-file F   as for import: decrypt certificate-protected keys
                         before writing (then --plaintext or --encrypt-cert applies to them)
`

// sourceElements reads the elements of src, a store spec (ring ring) or a path as --keys reads
// it, and names each element for messages.
func (c *cli) sourceElements(ctx context.Context, src, ring string) ([][]byte, []string, error) {
	if !storespec.IsSpec(src) {
		return readElements(src)
	}
	if ring == "" {
		ring = "default"
	}
	s, err := storespec.Open(ctx, src, c.getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", storespec.Redact(src), err)
	}
	defer s.Close()
	snap, err := s.List(ctx, ring)
	if err != nil {
		return nil, nil, fmt.Errorf("%s ring %s: %w", storespec.Redact(src), ring, err)
	}
	elements := make([][]byte, len(snap.Elements))
	sources := make([]string, len(snap.Elements))
	for i, e := range snap.Elements {
		elements[i], sources[i] = e.XML, e.Name
	}
	return elements, sources, nil
}

// importSummary is what import reports.
type importSummary struct {
	From      string          `json:"from"`
	To        string          `json:"to"`
	Ring      string          `json:"ring"`
	Elements  int             `json:"elements"`
	Added     int             `json:"added"`
	Present   int             `json:"already_present"`
	Decrypted []keyring.KeyID `json:"decrypted"`
	Warnings  []string        `json:"warnings"`
	Version   uint64          `json:"version"`
}

// prepareElements checks that elements load as ASP.NET Core would load them and returns them
// named, in compact form, with certificate-protected keys decrypted when opts can open them.
func prepareElements(elements [][]byte, opts keyring.ParseOptions, decrypt bool) ([]store.Element, []keyring.KeyID, []string, error) {
	ring, err := keyring.ParseElements(elements, opts)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the source ring cannot be loaded (ASP.NET Core would fail on it too): %w", err)
	}
	var warnings []string
	for _, s := range ring.Skipped() {
		warnings = append(warnings, fmt.Sprintf("element %d (%s) is skipped by ASP.NET Core: %v", s.Index+1, s.Name, s.Err))
	}
	var out []store.Element
	var decrypted []keyring.KeyID
	for i, el := range elements {
		name, err := keyring.ElementName(el)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("element %d cannot be named, so it cannot be stored: %w", i+1, err)
		}
		compact, err := keyring.CompactXML(el)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("element %d (%s): %w", i+1, name, err)
		}
		if k, err := keyring.ParseKey(compact, opts); err == nil {
			switch {
			case k.Protection == keyring.ProtectionCertificate && k.Descriptor != nil && decrypt:
				plain, err := keyring.MarshalKey(k)
				if err != nil {
					return nil, nil, nil, fmt.Errorf("key %s: %w", k.ID, err)
				}
				compact = plain
				decrypted = append(decrypted, k.ID)
			case k.Descriptor == nil:
				warnings = append(warnings, fmt.Sprintf("key %s is copied as it is but cannot be used here: %v", k.ID, k.DescriptorErr))
			}
		}
		out = append(out, store.Element{Name: name, XML: compact})
	}
	return out, decrypted, warnings, nil
}

// readPrepared reads the ring at from (ring ring when from is a store spec), checks and prepares
// its elements as prepareElements does, and prints the warnings; errors carry the command name.
func (c *cli) readPrepared(ctx context.Context, name, from, ring string, cf certFlags) ([]store.Element, []keyring.KeyID, []string, error) {
	opts, err := cf.parseOptions()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	elements, _, err := c.sourceElements(ctx, from, ring)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	prepared, decrypted, warnings, err := prepareElements(elements, opts, len(cf.certs) > 0)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %s: %w", name, storespec.Redact(from), err)
	}
	for _, w := range warnings {
		fmt.Fprintf(c.stderr, "dpkeyring: %s: warning: %s\n", name, w)
	}
	return prepared, decrypted, warnings, nil
}

func (c *cli) importRing(ctx context.Context, args []string) error {
	const name = "import"
	fs := newFlagSet(name)
	from := fs.String("from", "", "")
	to := fs.String("to", "", "")
	ringName := fs.String("ring", "default", "")
	fromRing := fs.String("from-ring", "", "")
	var cf certFlags
	cf.register(fs)
	auditPath := fs.String("audit-log", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, err := c.parseFlags(fs, importUsage, args)
	if err != nil || pos == nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usageErrorf(name, "unexpected argument %q", pos[0])
	case *from == "":
		return usageErrorf(name, "--from is required")
	case *to == "":
		return usageErrorf(name, "--to is required")
	case !storespec.IsSpec(*to):
		return usageErrorf(name, "--to %q is not a store spec (file:DIR, redis://…, vault://…)", *to)
	}
	if err := store.ValidRingName(*ringName); err != nil {
		return usageErrorf(name, "--ring: %v", err)
	}
	if *fromRing == "" {
		*fromRing = *ringName
	}
	if err := cf.validate(name); err != nil {
		return err
	}
	prepared, decrypted, warnings, err := c.readPrepared(ctx, name, *from, *fromRing, cf)
	if err != nil {
		return err
	}
	sum := importSummary{
		From: storespec.Redact(*from), To: storespec.Redact(*to), Ring: *ringName,
		Elements: len(prepared), Decrypted: decrypted, Warnings: warnings,
	}
	if sum.Decrypted == nil {
		sum.Decrypted = []keyring.KeyID{}
	}
	if sum.Warnings == nil {
		sum.Warnings = []string{}
	}
	dst, err := storespec.Open(ctx, *to, c.getenv)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", name, storespec.Redact(*to), err)
	}
	defer dst.Close()
	appendErr := c.appendAll(ctx, dst, *ringName, prepared, &sum)
	if err := c.auditImport(ctx, *auditPath, *to, &sum, appendErr); err != nil {
		fmt.Fprintf(c.stderr, "dpkeyring: import: warning: audit log: %v\n", err)
	}
	if err := appendErr; err != nil {
		return fmt.Errorf("%s: %s ring %s: %w (%d of %d elements written; running the import again resumes safely)",
			name, storespec.Redact(*to), *ringName, err, sum.Added+sum.Present, len(prepared))
	}
	if *asJSON {
		e := json.NewEncoder(c.stdout)
		e.SetIndent("", "  ")
		return e.Encode(sum)
	}
	fmt.Fprintf(c.stdout, "imported %d elements into ring %s of %s: %d added, %d already present",
		sum.Elements, sum.Ring, sum.To, sum.Added, sum.Present)
	if len(sum.Decrypted) > 0 {
		fmt.Fprintf(c.stdout, ", %d keys decrypted with the certificate", len(sum.Decrypted))
	}
	fmt.Fprintf(c.stdout, " (ring version %d)\n", sum.Version)
	return nil
}

// appendAll appends every element under the ring's writer lock, counting what was new.
func (c *cli) appendAll(ctx context.Context, s storespec.Store, ring string, elements []store.Element, sum *importSummary) error {
	host, _ := os.Hostname()
	owner := fmt.Sprintf("dpkeyring-import/%s/%d", host, os.Getpid())
	const ttl = time.Minute
	var lease store.Lease
	var err error
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, 2*time.Second) {
		lease, err = s.Lock(ctx, ring, owner, ttl)
		if !errors.Is(err, store.ErrLocked) {
			break
		}
		fmt.Fprintf(c.stderr, "dpkeyring: import: %v; waiting\n", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	if err != nil {
		return err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.Unlock(uctx, lease)
	}()
	before := uint64(0)
	if snap, err := s.List(ctx, ring); err == nil {
		before = snap.Version
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	renewed := time.Now()
	for i, e := range elements {
		if time.Since(renewed) > ttl/3 {
			if lease, err = s.Lock(ctx, ring, owner, ttl); err != nil {
				return err
			}
			renewed = time.Now()
		}
		v, err := s.Append(ctx, ring, e, lease.Token)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		if v != before {
			sum.Added++
		} else {
			sum.Present++
		}
		before, sum.Version = v, v
		if n := i + 1; n%50 == 0 && n < len(elements) {
			fmt.Fprintf(c.stderr, "dpkeyring: import: %d/%d elements\n", n, len(elements))
		}
	}
	if sum.Version == 0 {
		if snap, err := s.List(ctx, ring); err == nil {
			sum.Version = snap.Version
		}
	}
	return nil
}

func (c *cli) exportRing(ctx context.Context, args []string) error {
	const name = "export"
	fs := newFlagSet(name)
	from := fs.String("from", "", "")
	ringName := fs.String("ring", "default", "")
	out := fs.String("out", "-", "")
	plaintext := fs.Bool("plaintext", false, "")
	encryptCert := fs.String("encrypt-cert", "", "")
	var cf certFlags
	cf.register(fs)
	pos, err := c.parseFlags(fs, exportUsage, args)
	if err != nil || pos == nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usageErrorf(name, "unexpected argument %q", pos[0])
	case *from == "":
		return usageErrorf(name, "--from is required")
	case *plaintext && *encryptCert != "":
		return usageErrorf(name, "--plaintext and --encrypt-cert exclude each other")
	case !*plaintext && *encryptCert == "":
		return usageErrorf(name, "the document would hold master keys: pass --encrypt-cert CERT to protect them, or --plaintext to write them unencrypted")
	}
	if err := cf.validate(name); err != nil {
		return err
	}
	var cert *x509.Certificate
	if *encryptCert != "" {
		if cert, err = readCertificate(*encryptCert); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	prepared, _, _, err := c.readPrepared(ctx, name, *from, *ringName, cf)
	if err != nil {
		return err
	}
	docElements := make([][]byte, len(prepared))
	for i, e := range prepared {
		docElements[i] = e.XML
		if cert == nil {
			continue
		}
		k, err := keyring.ParseKey(e.XML, keyring.ParseOptions{})
		if err != nil || (k.Protection != keyring.ProtectionNone && k.Protection != keyring.ProtectionNullEncryptor) {
			continue // a revocation, or a key already protected: as it is
		}
		enc, err := keyring.EncryptKeyWithCertificate(e.XML, cert)
		if err != nil {
			return fmt.Errorf("%s: key %s: %w", name, k.ID, err)
		}
		docElements[i] = enc
	}
	doc, err := keyring.MarshalRepository(docElements)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if *out == "-" {
		_, err := c.stdout.Write(doc)
		return err
	}
	dir, base := filepath.Split(*out)
	if dir == "" {
		dir = "."
	}
	if err := writeFileAtomic(dir, base, doc); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(c.stderr, "dpkeyring: export: wrote %d elements of %s to %s\n", len(docElements), storespec.Redact(*from), *out)
	return nil
}

// readCertificate reads the first certificate of a PEM file (or a DER certificate).
func readCertificate(path string) (*x509.Certificate, error) {
	data, err := readFileLimited(path)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
	if cert, err := x509.ParseCertificate(data); err == nil {
		return cert, nil
	}
	return nil, fmt.Errorf("certificate %s: no CERTIFICATE block (PEM) or DER certificate found", path)
}

// sortedElements returns elements sorted by name, for comparisons.
func sortedElements(in []store.Element) []store.Element {
	out := append([]store.Element(nil), in...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// auditImport appends the import's audit record: to path, or for a file: store without a path
// to the audit log the server keeps beside it (DIR/audit.log), or nowhere for "-".
func (c *cli) auditImport(ctx context.Context, path, to string, sum *importSummary, importErr error) error {
	if path == "-" {
		return nil
	}
	if path == "" {
		dir, ok := strings.CutPrefix(to, "file:")
		if !ok {
			return nil
		}
		dir = strings.TrimPrefix(dir, "//localhost")
		dir = strings.TrimPrefix(dir, "//")
		path = filepath.Join(dir, "audit.log")
	}
	l, err := audit.Open(path)
	if err != nil {
		return err
	}
	e := audit.Event{
		Action: audit.ActionImport, Role: "cli", TokenName: "cli", Ring: sum.Ring, Result: audit.ResultOK,
		Reason: fmt.Sprintf("from %s: %d elements, %d added, %d already present, %d decrypted", sum.From, sum.Elements, sum.Added, sum.Present, len(sum.Decrypted)),
	}
	if importErr != nil {
		e.Result, e.Error = audit.ResultFailed, importErr.Error()
	}
	l.Record(ctx, e)
	if err := l.Err(); err != nil {
		l.Close()
		return err
	}
	return l.Close()
}
