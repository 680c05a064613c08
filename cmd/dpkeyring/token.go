package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/audit"
	"github.com/dpkeyring/dpkeyring/internal/tokens"
	"github.com/dpkeyring/dpkeyring/store"
)

const tokenUsage = `Usage:
  dpkeyring token create --role node|admin|debug --name NAME [--ring R]... [--data DIR]
  dpkeyring token list [--data DIR] [--json]
  dpkeyring token revoke NAME [--data DIR]

Manages the bearer tokens of 'dpkeyring serve', kept as SHA-256 hashes in DIR/tokens.json
(mode 0600). A running server picks changes up within a second, without a restart.

Run 'dpkeyring token <subcommand> -h' for details.
`

const tokenCreateUsage = `Usage:
  dpkeyring token create --role node|admin|debug --name NAME [--ring R]... [--data DIR]

Creates a token and prints it on stdout, once: only its hash is stored. Store it now (a secret
store, a Kubernetes secret, a file readable only by its user).

Roles: node reads the rings it is granted; admin also reads status, rotates and revokes; debug
may only use the cookie-decrypt debug endpoint.

Flags:
  --role ROLE
        node, admin or debug
  --name NAME
        unique name, shown in logs and the audit log (1-64 of A-Z a-z 0-9 . _ @ -)
  --ring R
        grant ring R; repeat for several. Without --ring the token is granted every ring
  --data DIR
        the server's data folder (default $DPKEYRING_DATA, else ./data)
`

const tokenListUsage = `Usage:
  dpkeyring token list [--data DIR] [--json]

Lists the tokens: name, role, rings and creation date (never the tokens or their hashes).

Flags:
  --data DIR
        the server's data folder (default $DPKEYRING_DATA, else ./data)
  --json
        print a JSON array
`

const tokenRevokeUsage = `Usage:
  dpkeyring token revoke NAME [--data DIR]

Deletes the token called NAME; a running server refuses it within a second.

Flags:
  --data DIR
        the server's data folder (default $DPKEYRING_DATA, else ./data)
`

func (c *cli) token(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, tokenUsage)
		return usageErrorf("token", "no subcommand given")
	}
	switch args[0] {
	case "create":
		return c.tokenCreate(ctx, args[1:])
	case "list":
		return c.tokenList(args[1:])
	case "revoke":
		return c.tokenRevoke(ctx, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, tokenUsage)
		return nil
	}
	return usageErrorf("token", "unknown subcommand %q", args[0])
}

// dataDir returns --data, else $DPKEYRING_DATA, else ./data.
func (c *cli) dataDir(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := c.getenv("DPKEYRING_DATA"); v != "" {
		return v
	}
	return "./data"
}

// auditTokenChange records a token change in the server's audit log (DPKEYRING_AUDIT_LOG, else
// DATA/audit.log). A failure to write it is reported on stderr, not as the command's failure.
func (c *cli) auditTokenChange(ctx context.Context, data string, e audit.Event) {
	path := c.getenv("DPKEYRING_AUDIT_LOG")
	if path == "" {
		path = filepath.Join(data, "audit.log")
	}
	l, err := audit.Open(path)
	if err == nil {
		l.Record(ctx, e)
		err = l.Err()
		if cerr := l.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "dpkeyring: warning: audit log: %v\n", err)
	}
}

func (c *cli) tokenCreate(ctx context.Context, args []string) error {
	const name = "token create"
	fs := newFlagSet(name)
	roleFlag := fs.String("role", "", "")
	tokenName := fs.String("name", "", "")
	var rings stringList
	fs.Var(&rings, "ring", "")
	data := fs.String("data", "", "")
	pos, err := c.parseFlags(fs, tokenCreateUsage, args)
	if err != nil || pos == nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf(name, "unexpected argument %q", pos[0])
	}
	if *roleFlag == "" {
		return usageErrorf(name, "--role is required (node, admin or debug)")
	}
	role, err := tokens.ParseRole(*roleFlag)
	if err != nil {
		return usageErrorf(name, "%v", err)
	}
	if *tokenName == "" {
		return usageErrorf(name, "--name is required")
	}
	if err := tokens.ValidName(*tokenName); err != nil {
		return usageErrorf(name, "%v", err)
	}
	for _, r := range rings {
		if err := store.ValidRingName(r); err != nil {
			return usageErrorf(name, "--ring: %v", err)
		}
	}
	dir := c.dataDir(*data)
	secrets, err := tokens.Create(tokens.Path(dir), c.now(), store.ValidRingName,
		tokens.NewToken{Name: *tokenName, Role: role, Rings: rings})
	if err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	granted := "every ring"
	if len(rings) > 0 {
		granted = "rings " + strings.Join(rings, ", ")
	}
	fmt.Fprintf(c.stderr, "dpkeyring: created token %q (role %s, %s). Store it now: it is not shown again.\n", *tokenName, role, granted)
	fmt.Fprintln(c.stdout, secrets[0])
	c.auditTokenChange(ctx, dir, audit.Event{Action: audit.ActionTokenCreate, Role: role.String(), TokenName: *tokenName,
		Ring: strings.Join(rings, ","), Result: audit.ResultOK})
	return nil
}

// tokenListEntry is one token in "token list --json".
type tokenListEntry struct {
	Name    string    `json:"name"`
	Role    string    `json:"role"`
	Rings   []string  `json:"rings"` // empty: every ring
	Created time.Time `json:"created"`
}

func (c *cli) tokenList(args []string) error {
	const name = "token list"
	fs := newFlagSet(name)
	data := fs.String("data", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, err := c.parseFlags(fs, tokenListUsage, args)
	if err != nil || pos == nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf(name, "unexpected argument %q", pos[0])
	}
	ts, err := tokens.Load(tokens.Path(c.dataDir(*data)))
	if err != nil {
		return fmt.Errorf("token list: %w", err)
	}
	if *asJSON {
		out := make([]tokenListEntry, 0, len(ts))
		for _, t := range ts {
			rings := t.Rings
			if rings == nil {
				rings = []string{}
			}
			out = append(out, tokenListEntry{Name: t.Name, Role: t.Role.String(), Rings: rings, Created: t.Created})
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(ts) == 0 {
		fmt.Fprintln(c.stdout, "no tokens")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tRINGS\tCREATED")
	for _, t := range ts {
		rings := "*"
		if len(t.Rings) > 0 {
			rings = strings.Join(t.Rings, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Role, rings, t.Created.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func (c *cli) tokenRevoke(ctx context.Context, args []string) error {
	const name = "token revoke"
	fs := newFlagSet(name)
	data := fs.String("data", "", "")
	pos, err := c.parseFlags(fs, tokenRevokeUsage, args)
	if err != nil || pos == nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf(name, "want exactly one token name")
	}
	dir := c.dataDir(*data)
	if err := tokens.Revoke(tokens.Path(dir), pos[0]); err != nil {
		return fmt.Errorf("token revoke: %w", err)
	}
	fmt.Fprintf(c.stdout, "revoked token %q\n", pos[0])
	c.auditTokenChange(ctx, dir, audit.Event{Action: audit.ActionTokenRevoke, TokenName: pos[0], Result: audit.ResultOK})
	return nil
}
