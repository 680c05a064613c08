package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
)

func (c *cli) keysList(ctx context.Context, args []string) error {
	const name = "keys list"
	fs := newFlagSet(name)
	keys := fs.String("keys", "", "")
	var cf certFlags
	cf.register(fs)
	ringName := fs.String("ring", "default", "")
	asJSON := fs.Bool("json", false, "")
	pos, err := c.parseFlags(fs, keysListUsage, args)
	if err != nil || pos == nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf(name, "unexpected argument %q", pos[0])
	}
	if *keys == "" {
		return usageErrorf(name, "--keys is required")
	}
	if err := cf.validate(name); err != nil {
		return err
	}
	l, err := c.loadKeys(ctx, *keys, *ringName, cf)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	report := newRingReport(*keys, l, c.now().UTC())
	if *asJSON {
		e := json.NewEncoder(c.stdout)
		e.SetIndent("", "  ")
		return e.Encode(report)
	}
	return report.writeText(c.stdout)
}

// ringReport is what keys list shows, and its JSON form.
type ringReport struct {
	Path string    `json:"path"`
	Now  time.Time `json:"now"`
	// DefaultKeyID is the key an ASP.NET Core node protects new payloads with at Now, or nil.
	DefaultKeyID *keyring.KeyID `json:"default_key_id"`
	// FallbackKeyID is set only without a default key: the key a node that may not generate
	// keys would use.
	FallbackKeyID *keyring.KeyID `json:"fallback_key_id,omitempty"`
	// NodeWouldGenerate is true when an ASP.NET Core node reading this ring now would create
	// a key of its own (no usable default key).
	NodeWouldGenerate bool             `json:"node_would_generate_key"`
	Keys              []keyReport      `json:"keys"`
	Skipped           []skippedReport  `json:"skipped"`
	Revocations       []revocationJSON `json:"revocations"`
}

type keyReport struct {
	ID         keyring.KeyID  `json:"id"`
	Status     keyring.Status `json:"status"`
	Created    time.Time      `json:"created"`
	Activation time.Time      `json:"activation"`
	Expiration time.Time      `json:"expiration"`
	// Encryption and Validation are the descriptor's algorithms; "" when unknown (the
	// descriptor could not be read) and Validation "" for GCM.
	Encryption string `json:"encryption"`
	Validation string `json:"validation"`
	Protection string `json:"protection"`
	Default    bool   `json:"default"`
	// Error says why the key cannot be used (its descriptor could not be read), or "".
	Error string `json:"error,omitempty"`
}

type skippedReport struct {
	Source string `json:"source"`
	Name   string `json:"name,omitempty"`
	Reason string `json:"reason"`
}

type revocationJSON struct {
	All    bool           `json:"all"`
	KeyID  *keyring.KeyID `json:"key_id,omitempty"`
	Date   time.Time      `json:"date"`
	Reason string         `json:"reason"`
}

func newRingReport(path string, l *loadedRing, now time.Time) *ringReport {
	r := l.ring
	res := r.ResolveDefaultKey(now)
	rep := &ringReport{
		Path:              path,
		Now:               now,
		NodeWouldGenerate: res.ShouldGenerate,
		Keys:              []keyReport{},
		Skipped:           []skippedReport{},
		Revocations:       []revocationJSON{},
	}
	if res.Default != nil {
		id := res.Default.ID
		rep.DefaultKeyID = &id
	} else if res.Fallback != nil {
		id := res.Fallback.ID
		rep.FallbackKeyID = &id
	}
	for _, k := range r.Keys() {
		kr := keyReport{
			ID:         k.ID,
			Status:     r.Status(k, now),
			Created:    k.Created.UTC(),
			Activation: k.Activation.UTC(),
			Expiration: k.Expiration.UTC(),
			Protection: k.Protection.String(),
			Default:    res.Default != nil && res.Default.ID == k.ID,
		}
		if d := k.Descriptor; d != nil {
			kr.Encryption = d.Encryption.String()
			if !d.Encryption.IsGCM() {
				kr.Validation = d.Validation.String()
			}
		}
		if k.DescriptorErr != nil {
			kr.Error = k.DescriptorErr.Error()
		}
		rep.Keys = append(rep.Keys, kr)
	}
	for _, s := range r.Skipped() {
		rep.Skipped = append(rep.Skipped, skippedReport{Source: l.source(s.Index), Name: s.Name, Reason: s.Err.Error()})
	}
	for _, rv := range r.Revocations() {
		j := revocationJSON{All: rv.All, Date: rv.Date.UTC(), Reason: rv.Reason}
		if !rv.All {
			id := rv.KeyID
			j.KeyID = &id
		}
		rep.Revocations = append(rep.Revocations, j)
	}
	return rep
}

// count writes "1 key", "2 keys".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// tableDate formats a key date for the table: UTC, to the second.
func tableDate(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

func (rep *ringReport) writeText(w io.Writer) error {
	fmt.Fprintf(w, "Key ring %s at %s: %s, %s, %s\n", rep.Path, tableDate(rep.Now),
		count(len(rep.Keys), "key"), count(len(rep.Revocations), "revocation"), count(len(rep.Skipped), "skipped element"))
	switch {
	case rep.DefaultKeyID != nil:
		fmt.Fprintf(w, "Default key: %s\n", rep.DefaultKeyID)
	case rep.FallbackKeyID != nil:
		fmt.Fprintf(w, "No default key: an ASP.NET Core node would create a key now (or, with AutoGenerateKeys off, use the fallback key %s)\n", rep.FallbackKeyID)
	default:
		fmt.Fprintln(w, "No default key: an ASP.NET Core node would create a key now")
	}
	if len(rep.Keys) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\tKEY ID\tSTATUS\tCREATED\tACTIVATION\tEXPIRATION\tALGORITHM\tPROTECTION")
		for _, k := range rep.Keys {
			mark := ""
			if k.Default {
				mark = "*"
			}
			alg := "?"
			if k.Encryption != "" {
				alg = k.Encryption
				if k.Validation != "" {
					alg += "+" + k.Validation
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, k.ID, k.Status,
				tableDate(k.Created), tableDate(k.Activation), tableDate(k.Expiration), alg, k.Protection)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		header := false
		for _, k := range rep.Keys {
			if k.Error == "" {
				continue
			}
			if !header {
				fmt.Fprintln(w, "\nKeys that cannot be used (ASP.NET Core fails only when it needs them):")
				header = true
			}
			fmt.Fprintf(w, "  %s: %s\n", k.ID, k.Error)
		}
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintln(w, "\nSkipped elements (ASP.NET Core ignores them too):")
		for _, s := range rep.Skipped {
			fmt.Fprintf(w, "  %s: %s\n", s.Source, s.Reason)
		}
	}
	if len(rep.Revocations) > 0 {
		fmt.Fprintln(w, "\nRevocations:")
		for _, rv := range rep.Revocations {
			what := "all keys created before " + tableDate(rv.Date)
			if !rv.All {
				what = fmt.Sprintf("key %s, revoked %s", rv.KeyID, tableDate(rv.Date))
			}
			if rv.Reason != "" {
				what += fmt.Sprintf(" (reason: %q)", rv.Reason)
			}
			fmt.Fprintf(w, "  %s\n", what)
		}
	}
	return nil
}
