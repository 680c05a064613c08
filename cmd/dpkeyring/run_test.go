package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// result is what one in-process run of the program produced.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the program in-process with the given stdin and clock, as main would, and returns
// the exit code and output.
func runCLI(tb testing.TB, now time.Time, stdin string, args ...string) result {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	c := &cli{
		getenv: func(string) string { return "" },
		stdin:  strings.NewReader(stdin),
		stdout: &stdout,
		stderr: &stderr,
		now:    func() time.Time { return now },
	}
	err := c.run(tb.Context(), args)
	code := report(err, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestRunUsesRealClock(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"version"}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	if !strings.HasPrefix(stdout.String(), "dpkeyring ") {
		t.Errorf("version printed %q, want it to start with \"dpkeyring \"", stdout.String())
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // substring of the one stderr line
	}{
		{"no command", nil, "no command given"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"keys without subcommand", []string{"keys"}, "keys: no subcommand given"},
		{"keys unknown subcommand", []string{"keys", "rotate"}, `keys: unknown subcommand "rotate"`},
		{"help unknown topic", []string{"help", "nope"}, `no help for unknown command "nope"`},
		{"version extra argument", []string{"version", "x"}, `version: unexpected argument "x"`},

		{"keys list without --keys", []string{"keys", "list"}, "keys list: --keys is required"},
		{"keys list unknown flag", []string{"keys", "list", "--keys", "d", "--bogus"}, "keys list: flag provided but not defined: -bogus"},
		{"keys list argument", []string{"keys", "list", "--keys", "d", "extra"}, `keys list: unexpected argument "extra"`},
		{"keys list password without cert", []string{"keys", "list", "--keys", "d", "--cert-password-file", "p"}, "--cert-password-file needs --cert"},

		{"keys new without --dir", []string{"keys", "new"}, "keys new: --dir is required"},
		{"keys new short lifetime", []string{"keys", "new", "--dir", "d", "--lifetime", "6d"}, "shorter than the minimum 7d"},
		{"keys new short hours", []string{"keys", "new", "--dir", "d", "--lifetime", "167h"}, "shorter than the minimum 7d"},
		{"keys new bad lifetime", []string{"keys", "new", "--dir", "d", "--lifetime", "ninety"}, `invalid lifetime "ninety"`},
		{"keys new negative lifetime", []string{"keys", "new", "--dir", "d", "--lifetime", "-90d"}, `invalid lifetime "-90d"`},
		{"keys new argument", []string{"keys", "new", "--dir", "d", "extra"}, `keys new: unexpected argument "extra"`},

		{"unprotect without --keys", []string{"unprotect", "x"}, "unprotect: --keys is required"},
		{"unprotect without payload", []string{"unprotect", "--keys", "d"}, "unprotect: no payload given"},
		{"unprotect two payloads", []string{"unprotect", "--keys", "d", "a", "b"}, `unprotect: unexpected argument "b"`},

		{"cookie without --keys", []string{"decrypt-cookie", "x"}, "decrypt-cookie: --keys is required"},
		{"cookie without input", []string{"decrypt-cookie", "--keys", "d"}, "decrypt-cookie: no cookie given"},
		{"cookie value and header", []string{"decrypt-cookie", "--keys", "d", "--cookie-header", "a=b", "v"}, "either as VALUE or with --cookie-header"},
		{"cookie umbraco and scheme", []string{"decrypt-cookie", "--keys", "d", "--umbraco", "--scheme", "S", "v"}, "--umbraco and --scheme cannot be used together"},
		{"cookie empty scheme", []string{"decrypt-cookie", "--keys", "d", "--scheme", "", "v"}, "--scheme must not be empty"},
		{"cookie name without header", []string{"decrypt-cookie", "--keys", "d", "--cookie-name", "n", "v"}, "--cookie-name only applies to --cookie-header"},
		{"cookie two values", []string{"decrypt-cookie", "--keys", "d", "a", "b"}, `decrypt-cookie: unexpected argument "b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, time.Now(), "", tc.args...)
			if r.code != exitUsage {
				t.Errorf("exit code %d, want %d (stderr %q)", r.code, exitUsage, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "dpkeyring: ") || !strings.Contains(last, tc.want) {
				t.Errorf("stderr last line %q, want \"dpkeyring: ...%s...\"", last, tc.want)
			}
			if !strings.Contains(last, "for usage)") {
				t.Errorf("stderr %q does not point to the usage", last)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "Commands:"},
		{[]string{"--help"}, "Commands:"},
		{[]string{"-h"}, "Commands:"},
		{[]string{"help", "keys", "new"}, "dpkeyring keys new --dir DIR"},
		{[]string{"help", "decrypt-cookie"}, "--cookie-header"},
		{[]string{"keys", "-h"}, "dpkeyring keys list --keys PATH"},
		{[]string{"keys", "list", "-h"}, "--cert-password-file"},
		{[]string{"keys", "new", "--help"}, "--activate-now"},
		{[]string{"unprotect", "-h"}, "--purpose P"},
		{[]string{"decrypt-cookie", "-help"}, "--umbraco"},
		{[]string{"version", "-h"}, "dpkeyring version"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCLI(t, time.Now(), "", tc.args...)
			if r.code != exitOK || r.stderr != "" {
				t.Fatalf("exit code %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.want) {
				t.Errorf("stdout does not contain %q:\n%s", tc.want, r.stdout)
			}
		})
	}
}

func TestNoCommandPrintsUsage(t *testing.T) {
	r := runCLI(t, time.Now(), "")
	if r.code != exitUsage || !strings.Contains(r.stderr, "Commands:") {
		t.Errorf("exit code %d, stderr %q; want 2 and the command list", r.code, r.stderr)
	}
}

func TestParseLifetime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"90d", 90 * 24 * time.Hour, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"2160h", 2160 * time.Hour, false},
		{"168h30m", 168*time.Hour + 30*time.Minute, false},
		{" 30d ", 30 * 24 * time.Hour, false},
		{"d", 0, true},
		{"1.5d", 0, true},
		{"-1d", 0, true},
		{"90", 0, true},
		{"", 0, true},
		{"99999999999d", 0, true},
		{"100001d", 0, true},
		{"100000d", 100000 * 24 * time.Hour, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseLifetime(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseLifetime(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("parseLifetime(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	var stdout bytes.Buffer
	c := &cli{stdout: &stdout, stderr: io.Discard}
	fs := newFlagSet("t")
	keys := fs.String("keys", "", "")
	var purposes stringList
	fs.Var(&purposes, "purpose", "")
	pos, err := c.parseFlags(fs, "", []string{"PAYLOAD", "--keys", "k", "--purpose", "a", "-", "--purpose", "b", "--", "--not-a-flag"})
	if err != nil {
		t.Fatal(err)
	}
	if *keys != "k" || strings.Join(purposes, ",") != "a,b" {
		t.Errorf("keys %q purposes %q, want k and a,b", *keys, purposes)
	}
	if got := strings.Join(pos, " "); got != "PAYLOAD - --not-a-flag" {
		t.Errorf("positional %q, want \"PAYLOAD - --not-a-flag\"", got)
	}
}

func TestPanicIsOneLine(t *testing.T) {
	// A nil stdout makes "version" panic inside run; run must turn that into one error line.
	c := &cli{stdout: nil, stderr: io.Discard}
	err := c.run(t.Context(), []string{"version"})
	var stderr bytes.Buffer
	if code := report(err, &stderr); code != exitFailure {
		t.Errorf("exit code %d, want %d", code, exitFailure)
	}
	if got := stderr.String(); !strings.HasPrefix(got, "dpkeyring: internal error") || strings.Count(got, "\n") != 1 {
		t.Errorf("stderr %q, want one \"dpkeyring: internal error\" line", got)
	}
}
