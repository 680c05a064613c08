package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// docFiles are the guides whose dpkeyring command lines are checked: markdown (code blocks and
// inline code) and the deployment files (comment lines).
var docFiles = []string{
	"../../integration-aspnetcore.md",
	"../../integration-umbraco.md",
	"../../migration.md",
	"../../troubleshooting.md",
	"../README.md",
	"../compose.yaml",
	"../kubernetes/*.yaml",
	"../systemd/*",
}

// commandLine is one dpkeyring invocation found in a document.
type commandLine struct {
	where string   // file:line
	cmd   string   // "token create", "serve"
	args  []string // the words after the command
}

var inlineCode = regexp.MustCompile("`([^`]+)`")

// docSnippets returns the text of path that may hold command lines, with continuation lines
// joined: fenced code blocks and inline code of markdown, comment lines of other files.
func docSnippets(tb testing.TB, path string) map[int]string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	out := map[int]string{}
	md := strings.HasSuffix(path, ".md")
	inFence := false
	var pending strings.Builder
	start := 0
	for i, line := range lines {
		var text string
		switch {
		case md && strings.HasPrefix(strings.TrimSpace(line), "```"):
			inFence = !inFence
			continue
		case md && inFence:
			text = line
		case md:
			for _, m := range inlineCode.FindAllStringSubmatch(line, -1) {
				out[i+1] += m[1] + " ; "
			}
			continue
		default:
			t := strings.TrimSpace(line)
			if !strings.HasPrefix(t, "#") {
				continue
			}
			text = strings.TrimLeft(t, "# ")
		}
		if pending.Len() == 0 {
			start = i + 1
		}
		if cont, ok := strings.CutSuffix(strings.TrimRight(text, " "), `\`); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(text)
		out[start] += pending.String() + " ; "
		pending.Reset()
	}
	return out
}

// knownCommands returns the binary's commands ("serve", "keys list", "token create", ...).
func knownCommands(tb testing.TB) map[string]bool {
	tb.Helper()
	known := map[string]bool{}
	help := runBinary(tb, "", nil, "help")
	inCommands := false
	for _, line := range strings.Split(help.stdout+help.stderr, "\n") {
		switch {
		case strings.HasPrefix(line, "Commands:"):
			inCommands = true
		case inCommands && strings.TrimSpace(line) == "":
			inCommands = false
		case inCommands:
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "keys":
				known["keys "+f[1]] = true
			case len(f) > 0:
				known[f[0]] = true
			}
		}
	}
	for _, sub := range []string{"create", "list", "revoke"} {
		known["token "+sub] = true
	}
	return known
}

// separators end a command inside a shell line.
var separators = map[string]bool{"|": true, "||": true, "&&": true, ";": true, ">": true, ">>": true, "2>": true, "<": true}

// findCommands returns every dpkeyring invocation in the documents.
func findCommands(tb testing.TB, known map[string]bool) []commandLine {
	tb.Helper()
	var out []commandLine
	for _, pattern := range docFiles {
		paths, err := filepath.Glob(pattern)
		if err != nil || len(paths) == 0 {
			tb.Fatalf("%s: no such document", pattern)
		}
		for _, path := range paths {
			snippets := docSnippets(tb, path)
			lineNos := make([]int, 0, len(snippets))
			for n := range snippets {
				lineNos = append(lineNos, n)
			}
			sort.Ints(lineNos)
			for _, n := range lineNos {
				words := strings.Fields(snippets[n])
				for i, w := range words {
					if w != "dpkeyring" && !strings.HasSuffix(w, "/dpkeyring") {
						continue
					}
					var cmd string
					var rest int
					switch {
					case i+2 < len(words) && known[words[i+1]+" "+words[i+2]]:
						cmd, rest = words[i+1]+" "+words[i+2], i+3
					case i+1 < len(words) && known[words[i+1]]:
						cmd, rest = words[i+1], i+2
					}
					if cmd == "" {
						continue // "kubectl -n dpkeyring ...", "journalctl -u dpkeyring", ...
					}
					var args []string
					for _, a := range words[rest:] {
						if separators[a] || strings.HasSuffix(a, ";") {
							break
						}
						args = append(args, a)
					}
					out = append(out, commandLine{where: fmt.Sprintf("%s:%d", path, n), cmd: cmd, args: args})
				}
			}
		}
	}
	return out
}

var docFlag = regexp.MustCompile(`^[\[(]*(--[a-z][a-z0-9-]*)`)

// TestDocsCommandLines checks that every dpkeyring command line in the guides uses a real
// command and real flags of it (as its -h text lists them).
func TestDocsCommandLines(t *testing.T) {
	known := knownCommands(t)
	for _, want := range []string{"serve", "agent", "rotate", "import", "token create", "keys list", "decrypt-cookie"} {
		if !known[want] {
			t.Fatalf("dpkeyring help does not list %q (parsed %v)", want, known)
		}
	}
	cmds := findCommands(t, known)
	if len(cmds) < 20 {
		t.Fatalf("found only %d dpkeyring command lines in the guides: the extraction is broken", len(cmds))
	}
	usage := map[string]string{}
	seen := map[string]bool{}
	for _, c := range cmds {
		if _, ok := usage[c.cmd]; !ok {
			usage[c.cmd] = usageOf(t, c.cmd)
		}
		seen[c.cmd] = true
		for _, a := range c.args {
			m := docFlag.FindStringSubmatch(a)
			if m == nil {
				continue
			}
			flag := m[1]
			if !regexp.MustCompile(regexp.QuoteMeta(flag) + `([^a-z0-9-]|$)`).MatchString(usage[c.cmd]) {
				t.Errorf("%s: dpkeyring %s has no flag %s", c.where, c.cmd, flag)
			}
		}
	}
	for _, want := range []string{"agent", "import", "decrypt-cookie", "token create", "rotate", "serve"} {
		if !seen[want] {
			t.Errorf("no %q command line found in the guides", want)
		}
	}
}

// TestDocsCommandLinesCatchesTypos proves the check above fails on a flag the command lacks.
func TestDocsCommandLinesCatchesTypos(t *testing.T) {
	u := usageOf(t, "import")
	for flag, want := range map[string]bool{"--from": true, "--from-ring": true, "--ring": true, "--form": false, "--rings": false} {
		got := regexp.MustCompile(regexp.QuoteMeta(flag) + `([^a-z0-9-]|$)`).MatchString(u)
		if got != want {
			t.Errorf("flag %s found in import usage: %v, want %v", flag, got, want)
		}
	}
}
