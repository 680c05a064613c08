package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/cookiejson"
	"github.com/dpkeyring/dpkeyring/keyring"
)

func (c *cli) decryptCookie(ctx context.Context, args []string) error {
	const name = "decrypt-cookie"
	fs := newFlagSet(name)
	keys := fs.String("keys", "", "")
	var cf certFlags
	cf.register(fs)
	ringName := fs.String("ring", "default", "")
	var appNames stringList
	fs.Var(&appNames, "app-name", "")
	scheme := fs.String("scheme", keyring.DefaultCookieScheme, "")
	umbraco := fs.Bool("umbraco", false, "")
	cookieName := fs.String("cookie-name", "", "")
	header := fs.String("cookie-header", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, err := c.parseFlags(fs, decryptCookieUsage, args)
	if err != nil || pos == nil {
		return err
	}
	set := explicitFlags(fs)
	if *keys == "" {
		return usageErrorf(name, "--keys is required")
	}
	if err := cf.validate(name); err != nil {
		return err
	}
	if *umbraco && set["scheme"] {
		return usageErrorf(name, "--umbraco and --scheme cannot be used together")
	}
	if *scheme == "" {
		return usageErrorf(name, "--scheme must not be empty")
	}
	switch {
	case set["cookie-header"] && len(pos) > 0:
		return usageErrorf(name, "give the cookie either as VALUE or with --cookie-header, not both")
	case !set["cookie-header"] && len(pos) == 0:
		return usageErrorf(name, "no cookie given (give its value, - to read it from stdin, or --cookie-header)")
	case len(pos) > 1:
		return usageErrorf(name, "unexpected argument %q", pos[1])
	case set["cookie-name"] && !set["cookie-header"]:
		return usageErrorf(name, "--cookie-name only applies to --cookie-header")
	case set["cookie-name"] && *cookieName == "":
		return usageErrorf(name, "--cookie-name must not be empty")
	}
	if *umbraco {
		*scheme = keyring.UmbracoScheme
	}
	if !set["cookie-name"] {
		*cookieName = keyring.CookieName(*scheme)
		if *umbraco {
			*cookieName = keyring.UmbracoCookieName
		}
	}

	var value string
	if set["cookie-header"] {
		h, err := c.argOrStdin(*header, "cookie header")
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		value, err = cookieFromHeader(h, *cookieName)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	} else {
		value, err = c.argOrStdin(pos[0], "cookie value")
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if strings.HasPrefix(value, "chunks-") {
			return fmt.Errorf("%s: the value %q is only the chunk count of a chunked cookie: pass the whole Cookie header with --cookie-header", name, value)
		}
	}

	l, err := c.loadKeys(ctx, *keys, *ringName, cf)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	now := c.now().UTC()
	res, err := l.ring.DecryptCookie(value, now, keyring.CookieOptions{Scheme: *scheme, AppNames: appNames})
	if err != nil {
		if *asJSON {
			// The failure document of the server's debug endpoint, with the diagnosis (never
			// the cookie or plaintext); the error line still goes to stderr.
			if doc, merr := cookiejson.MarshalFailure(err); merr == nil {
				if _, werr := c.stdout.Write(doc); werr != nil {
					return werr
				}
			}
		}
		return fmt.Errorf("%s: %w", name, explainCookie(err))
	}
	if *asJSON {
		// The same document as the server's debug endpoint.
		doc, err := cookiejson.Marshal(res)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		_, err = c.stdout.Write(doc)
		return err
	}
	return writeCookieText(c.stdout, res, now)
}

// cookieFromHeader takes the cookie name from a Cookie request header (with or without the
// "Cookie:" prefix), reassembling its chunks as ChunkingCookieManager does.
func cookieFromHeader(header, name string) (string, error) {
	if k, v, ok := strings.Cut(header, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "cookie") {
		header = v
	}
	pairs := keyring.ParseCookieHeader(header)
	lookup := keyring.LookupCookies(pairs)
	if _, ok := lookup(name); !ok {
		var names []string
		for _, p := range pairs {
			if !slices.Contains(names, p.Name) {
				names = append(names, p.Name)
			}
		}
		if len(names) == 0 {
			return "", fmt.Errorf("cookie %s is not in the header, which holds no cookies", name)
		}
		return "", fmt.Errorf("cookie %s is not in the header (it holds %s); choose another with --cookie-name, --scheme or --umbraco", name, strings.Join(names, ", "))
	}
	value, err := keyring.ReassembleCookie(name, lookup)
	if err != nil {
		return "", fmt.Errorf("cookie %s: %w", name, err)
	}
	return value, nil
}

// explainCookie turns a DecryptCookie error into one sentence for the operator.
func explainCookie(err error) error {
	var ce *keyring.CookieError
	if !errors.As(err, &ce) {
		return fmt.Errorf("cannot decrypt: %w", err)
	}
	msg := "cannot decrypt: " + ce.Diagnosis.Hint
	if errors.Is(err, keyring.ErrDecryptionFailed) {
		tried := make([]purposeChain, len(ce.Diagnosis.AppNames))
		for i, app := range ce.Diagnosis.AppNames {
			tried[i] = purposeChain{appName: app, purposes: ce.Diagnosis.PurposeChains[i]}
			if app != "" && len(tried[i].purposes) > 0 {
				tried[i].purposes = tried[i].purposes[1:]
			}
		}
		msg += " (tried " + describeTried(tried) + ")"
	} else if cause := ce.Err; cause != nil && !errors.Is(cause, keyring.ErrKeyNotFound) && !errors.Is(cause, keyring.ErrKeyRevoked) {
		msg += ": " + cause.Error()
	}
	return explainf(err, "%s", msg)
}

// writeCookieText prints a decrypted cookie for a human.
func writeCookieText(w io.Writer, res *keyring.CookieResult, now time.Time) error {
	app := "(none)"
	if res.AppName != "" {
		app = fmt.Sprintf("%q", res.AppName)
	}
	fmt.Fprintf(w, "Key:         %s (%s)\n", res.KeyID, res.KeyStatus)
	fmt.Fprintf(w, "App name:    %s\n", app)
	fmt.Fprintf(w, "Purposes:    %s\n", quoteAll(res.Purposes))
	t := res.Ticket
	fmt.Fprintf(w, "Scheme:      %s\n", t.Scheme)
	if issued, ok := t.Properties.Issued(); ok {
		fmt.Fprintf(w, "Issued:      %s\n", issued.UTC().Format(time.RFC3339))
	}
	if expires, ok := t.Properties.Expires(); ok {
		state := "valid"
		if !expires.After(now) {
			state = "EXPIRED"
		}
		fmt.Fprintf(w, "Expires:     %s (%s at %s)\n", expires.UTC().Format(time.RFC3339), state, now.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "Persistent:  %t\n", t.Properties.IsPersistent())
	if len(t.Properties.Items) > 0 {
		fmt.Fprintln(w, "Properties:")
		for _, it := range t.Properties.Items {
			fmt.Fprintf(w, "  %s = %q\n", it.Key, it.Value)
		}
	}
	for i, id := range t.Identities {
		writeIdentity(w, fmt.Sprintf("Identity %d", i+1), &id, "")
	}
	return nil
}

func writeIdentity(w io.Writer, title string, id *keyring.Identity, indent string) {
	fmt.Fprintf(w, "%s%s: authentication type %q\n", indent, title, id.AuthenticationType)
	fmt.Fprintf(w, "%s  name claim type: %s\n", indent, orDefault(id.NameClaimType, keyring.DefaultNameClaimType))
	fmt.Fprintf(w, "%s  role claim type: %s\n", indent, orDefault(id.RoleClaimType, keyring.DefaultRoleClaimType))
	fmt.Fprintf(w, "%s  claims (%d):\n", indent, len(id.Claims))
	for _, cl := range id.Claims {
		fmt.Fprintf(w, "%s    %s = %q", indent, cl.Type, cl.Value)
		var extra []string
		if cl.ValueType != "" && cl.ValueType != keyring.ClaimValueTypeString {
			extra = append(extra, "value type "+cl.ValueType)
		}
		if cl.Issuer != "" && cl.Issuer != keyring.DefaultIssuer {
			extra = append(extra, "issuer "+cl.Issuer)
		}
		if cl.OriginalIssuer != "" && cl.OriginalIssuer != cl.Issuer {
			extra = append(extra, "original issuer "+cl.OriginalIssuer)
		}
		for _, p := range cl.Properties {
			extra = append(extra, fmt.Sprintf("property %s=%q", p.Key, p.Value))
		}
		if len(extra) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(extra, ", "))
		}
		fmt.Fprintln(w)
	}
	if id.BootstrapContext != nil {
		fmt.Fprintf(w, "%s  bootstrap context: %q\n", indent, *id.BootstrapContext)
	}
	if id.Actor != nil {
		writeIdentity(w, "actor", id.Actor, indent+"  ")
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
