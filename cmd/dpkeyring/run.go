package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // cannot decrypt, or an operational failure
	exitUsage   = 2 // bad command line
)

// cli holds what a command may touch: the environment, the standard streams and the clock.
// Tests build one with a fixed clock; run builds one with the real clock.
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
}

// run is the whole program: main only maps its error to an exit code (see report).
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	return c.run(ctx, args)
}

// usageError is a bad command line: exit code 2.
type usageError struct {
	cmd string // "keys new", or "" for the top level
	msg string
}

func (e *usageError) Error() string {
	if e.cmd == "" {
		return e.msg + " (run 'dpkeyring help' for usage)"
	}
	return e.cmd + ": " + e.msg + " (run 'dpkeyring " + e.cmd + " -h' for usage)"
}

func usageErrorf(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// report writes err to stderr as one line and returns the process exit code.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", " ")
	fmt.Fprintf(stderr, "dpkeyring: %s\n", msg)
	if ue := (*usageError)(nil); errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

func (c *cli) run(ctx context.Context, args []string) (err error) {
	defer func() {
		// A bug must still end in one line on stderr, never a stack trace.
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error (please report it): %v", r)
		}
	}()
	if len(args) == 0 {
		fmt.Fprint(c.stderr, mainUsage)
		return usageErrorf("", "no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		return c.help(rest)
	case "version", "-version", "--version":
		return c.version(rest)
	case "keys":
		if len(rest) == 0 {
			fmt.Fprint(c.stderr, keysUsage)
			return usageErrorf("keys", "no subcommand given")
		}
		switch rest[0] {
		case "list":
			return c.keysList(ctx, rest[1:])
		case "new":
			return c.keysNew(ctx, rest[1:])
		case "help", "-h", "-help", "--help":
			fmt.Fprint(c.stdout, keysUsage)
			return nil
		}
		return usageErrorf("keys", "unknown subcommand %q", rest[0])
	case "unprotect":
		return c.unprotect(ctx, rest)
	case "decrypt-cookie":
		return c.decryptCookie(ctx, rest)
	case "token":
		return c.token(ctx, rest)
	case "serve":
		return c.serve(ctx, rest)
	case "rotate":
		return c.rotate(ctx, rest)
	case "import":
		return c.importRing(ctx, rest)
	case "export":
		return c.exportRing(ctx, rest)
	case "agent":
		return c.agent(ctx, rest)
	}
	return usageErrorf("", "unknown command %q", cmd)
}

// commandUsage maps "dpkeyring help X" topics to their usage text.
var commandUsage = map[string]string{
	"keys":           keysUsage,
	"token":          tokenUsage,
	"serve":          serveUsage,
	"rotate":         rotateUsage,
	"agent":          agentUsage,
	"import":         importUsage,
	"export":         exportUsage,
	"token create":   tokenCreateUsage,
	"token list":     tokenListUsage,
	"token revoke":   tokenRevokeUsage,
	"keys list":      keysListUsage,
	"keys new":       keysNewUsage,
	"unprotect":      unprotectUsage,
	"decrypt-cookie": decryptCookieUsage,
	"version":        versionUsage,
}

func (c *cli) help(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stdout, mainUsage)
		return nil
	}
	topic := strings.Join(args, " ")
	u, ok := commandUsage[topic]
	if !ok {
		return usageErrorf("", "no help for unknown command %q", topic)
	}
	fmt.Fprint(c.stdout, u)
	return nil
}

func (c *cli) version(args []string) error {
	fs := newFlagSet("version")
	pos, err := c.parseFlags(fs, versionUsage, args)
	if err != nil || pos == nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf("version", "unexpected argument %q", pos[0])
	}
	fmt.Fprintln(c.stdout, versionString())
	return nil
}

// versionString reports the module version and VCS revision the binary was built from.
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dpkeyring (unknown version)"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified, when string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		case "vcs.time":
			when = s.Value
		}
	}
	out := "dpkeyring " + v
	if rev != "" {
		out += " " + rev + modified
		if when != "" {
			out += " " + when
		}
	}
	return out + " " + info.GoVersion
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by report
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args with fs, allowing flags after positional arguments (as in
// "unprotect PAYLOAD --keys DIR"); "--" ends the flags. It returns the positional arguments
// (non-nil, possibly empty). After -h or --help it prints usage to stdout and returns nil, nil:
// the command then returns nil.
func (c *cli) parseFlags(fs *flag.FlagSet, usage string, args []string) ([]string, error) {
	pos := []string{}
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, usage)
			return nil, nil
		}
		if err != nil {
			return nil, usageErrorf(fs.Name(), "%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse consumed a "--" terminator if the word before the rest is "--".
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// explicitFlags returns the names of the flags set on the command line.
func explicitFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}
