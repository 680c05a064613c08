package validate

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY ...
	rest string // everything after the keyword
	line int
}

// stage is one FROM ... [AS name] stage.
type stage struct {
	image, name string
	body        []instruction
}

type dockerfile struct {
	stages []stage
}

// parseDockerfile reads the subset of the Dockerfile syntax the repository's Dockerfile uses:
// comments, parser directives, backslash continuations and instructions.
func parseDockerfile(path string) (*dockerfile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		df      dockerfile
		pending strings.Builder
		start   int
		n       int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if pending.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if pending.Len() > 0 && strings.HasPrefix(line, "#") {
			continue // comments inside a continued instruction
		}
		if pending.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(line)
		text := pending.String()
		pending.Reset()
		cmd, rest, _ := strings.Cut(text, " ")
		in := instruction{cmd: strings.ToUpper(cmd), rest: strings.TrimSpace(rest), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.rest)
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			df.stages = append(df.stages, st)
			continue
		}
		if len(df.stages) == 0 {
			if in.cmd == "ARG" {
				continue
			}
			return nil, fmt.Errorf("%s:%d: %s before FROM", path, start, in.cmd)
		}
		last := &df.stages[len(df.stages)-1]
		last.body = append(last.body, in)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if pending.Len() > 0 {
		return nil, fmt.Errorf("%s: ends in a continuation line", path)
	}
	return &df, nil
}

// all returns the instructions named cmd in stage s.
func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// one returns the only instruction named cmd in s, or an error.
func (s stage) one(cmd string) (instruction, error) {
	all := s.all(cmd)
	if len(all) != 1 {
		return instruction{}, fmt.Errorf("stage %s has %d %s instructions, want 1", s.image, len(all), cmd)
	}
	return all[0], nil
}

// jsonArray decodes an exec-form argument list: ["a", "b"].
func jsonArray(s string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("not an exec-form JSON array: %s", s)
	}
	return out, nil
}

// goBuildCmd is the go build command of the build stage, split into its parts.
type goBuildCmd struct {
	dir    string   // WORKDIR relative to the build context ("." when the context is copied there)
	env    []string // KEY=VALUE assignments before "go"
	flags  []string // everything between "build" and the package, without -o OUT
	output string   // the -o value
	pkg    string   // ./cmd/dpkeyring
}

// args returns the go command's arguments with the output redirected to out.
func (b goBuildCmd) args(out string) []string {
	args := append([]string{"build"}, b.flags...)
	return append(args, "-o", out, b.pkg)
}

// goBuild finds and splits the build stage's "go build" command.
func (df *dockerfile) goBuild() (goBuildCmd, error) {
	if len(df.stages) == 0 {
		return goBuildCmd{}, fmt.Errorf("Dockerfile has no stage")
	}
	for _, in := range df.stages[0].all("RUN") {
		words, err := shellWords(in.rest)
		if err != nil {
			return goBuildCmd{}, fmt.Errorf("Dockerfile:%d: %v", in.line, err)
		}
		i := 0
		var env []string
		for i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-") {
			env = append(env, words[i])
			i++
		}
		if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
			continue
		}
		b := goBuildCmd{dir: ".", env: env}
		rest := words[i+2:]
		for j := 0; j < len(rest); j++ {
			switch {
			case rest[j] == "-o" && j+1 < len(rest):
				b.output = rest[j+1]
				j++
			case strings.HasPrefix(rest[j], "-"):
				b.flags = append(b.flags, rest[j])
				if rest[j] == "-ldflags" && j+1 < len(rest) {
					b.flags = append(b.flags, rest[j+1])
					j++
				}
			default:
				if b.pkg != "" {
					return goBuildCmd{}, fmt.Errorf("Dockerfile:%d: two packages in go build", in.line)
				}
				b.pkg = rest[j]
			}
		}
		if b.output == "" || b.pkg == "" {
			return goBuildCmd{}, fmt.Errorf("Dockerfile:%d: go build without -o or package", in.line)
		}
		return b, nil
	}
	return goBuildCmd{}, fmt.Errorf("the build stage has no RUN ... go build")
}

// shellWords splits a shell command line with single and double quotes, no expansions. Only
// simple commands are accepted (no ;, &&, | or redirections), so what is checked is what runs.
func shellWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		inTok bool
		quote rune
	)
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inTok = r, true
		case r == ' ' || r == '\t':
			if inTok {
				words = append(words, cur.String())
				cur.Reset()
				inTok = false
			}
		case strings.ContainsRune(";&|<>`$", r):
			return nil, fmt.Errorf("shell syntax %q in %q: keep the build command a simple command", r, s)
		default:
			cur.WriteRune(r)
			inTok = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inTok {
		words = append(words, cur.String())
	}
	return words, nil
}

// goDirective returns the major.minor of the go directive in the repository's go.mod.
func goDirective(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		tb.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		tb.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

func TestDockerfile(t *testing.T) {
	df, err := parseDockerfile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(df.stages) != 2 {
		t.Fatalf("%d stages, want 2 (build, runtime)", len(df.stages))
	}
	build, final := df.stages[0], df.stages[1]

	t.Run("build stage", func(t *testing.T) {
		if want := "golang:" + goDirective(t); build.image != want {
			t.Errorf("build stage FROM %s, want %s (go.mod's go directive)", build.image, want)
		}
		if build.name != "build" {
			t.Errorf("build stage named %q, want build", build.name)
		}
		b, err := df.goBuild()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(b.env, "CGO_ENABLED=0") {
			t.Errorf("go build environment %q lacks CGO_ENABLED=0 (the runtime image has no libc)", b.env)
		}
		if diff := cmp.Diff([]string{"-trimpath", "-ldflags", "-s -w"}, b.flags); diff != "" {
			t.Errorf("go build flags (-want +got):\n%s", diff)
		}
		if b.pkg != "./cmd/dpkeyring" {
			t.Errorf("go build package %q, want ./cmd/dpkeyring", b.pkg)
		}
	})

	t.Run("runtime stage", func(t *testing.T) {
		if want := "gcr.io/distroless/static-debian12:nonroot"; final.image != want {
			t.Errorf("runtime stage FROM %s, want %s", final.image, want)
		}
		b, err := df.goBuild()
		if err != nil {
			t.Fatal(err)
		}
		copies := final.all("COPY")
		wantBinary := "--from=build " + b.output + " /dpkeyring"
		wantData := "--from=build --chown=65532:65532 /out/data /data"
		var got []string
		for _, c := range copies {
			got = append(got, c.rest)
		}
		if diff := cmp.Diff([]string{wantBinary, wantData}, got); diff != "" {
			t.Errorf("COPY instructions (-want +got):\n%s", diff)
		}
		mkdir := false
		for _, in := range build.all("RUN") {
			mkdir = mkdir || in.rest == "mkdir -p /out/data"
		}
		if !mkdir {
			t.Error("the build stage does not create /out/data, the runtime user's /data")
		}
		checks := []struct {
			cmd  string
			want string
		}{
			{"USER", "65532:65532"},
			{"VOLUME", `["/data"]`},
			{"EXPOSE", "8080"},
		}
		for _, c := range checks {
			in, err := final.one(c.cmd)
			if err != nil {
				t.Error(err)
				continue
			}
			if in.rest != c.want {
				t.Errorf("%s %s, want %s", c.cmd, in.rest, c.want)
			}
		}
		for cmd, want := range map[string][]string{
			"ENTRYPOINT": {"/dpkeyring"},
			"CMD":        {"serve", "--addr", "0.0.0.0:8080", "--data", "/data"},
		} {
			in, err := final.one(cmd)
			if err != nil {
				t.Error(err)
				continue
			}
			got, err := jsonArray(in.rest)
			if err != nil {
				t.Errorf("%s: %v", cmd, err)
				continue
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", cmd, diff)
			}
		}
	})
}

// imageCmd returns the Dockerfile's CMD.
func imageCmd(tb testing.TB) []string {
	tb.Helper()
	df, err := parseDockerfile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		tb.Fatal(err)
	}
	in, err := df.stages[len(df.stages)-1].one("CMD")
	if err != nil {
		tb.Fatal(err)
	}
	args, err := jsonArray(in.rest)
	if err != nil {
		tb.Fatal(err)
	}
	return args
}

// TestDockerBinary checks the binary the Dockerfile builds: static (the distroless static image
// has no dynamic loader or libc), stripped, and working as the image runs it.
func TestDockerBinary(t *testing.T) {
	bin := mustBinary(t)

	t.Run("static and stripped", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Skipf("not an ELF binary on %s: %v", runtime.GOOS, err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary has a PT_INTERP program header: it is dynamically linked")
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("the binary needs shared libraries %q", libs)
		}
		if f.Section(".symtab") != nil {
			t.Error("the binary has a symbol table: -ldflags -s did not apply")
		}
	})

	t.Run("version", func(t *testing.T) {
		r := runBinary(t, "", nil, "version")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "dpkeyring ") || !strings.Contains(r.stdout, runtime.Version()) {
			t.Errorf("dpkeyring version: exit %d, stdout %q; want exit 0 and the Go version %s", r.code, r.stdout, runtime.Version())
		}
	})

	t.Run("CMD", func(t *testing.T) {
		// The image's CMD, listening on a free loopback port and with /data in a temporary
		// folder, started from a read-only working directory: like readOnlyRootFilesystem, the
		// server must write nothing outside --data.
		args := imageCmd(t)
		data := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(data, 0o700); err != nil {
			t.Fatal(err)
		}
		args = replaceFlag(t, args, "--addr", "127.0.0.1:0")
		args = replaceFlag(t, args, "--data", data)
		cwd := t.TempDir()
		if err := os.Chmod(cwd, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(cwd, 0o755) })

		s := startServer(t, cwd, data, nil, args...)
		s.waitStatus(t, "/healthz", http.StatusOK)
		s.waitStatus(t, "/readyz", http.StatusOK)
		stdout, _ := s.output()
		if !strings.Contains(stdout, "dpk_") {
			t.Errorf("the first start printed no tokens on stdout: %q", stdout)
		}
		entries, err := os.ReadDir(cwd)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Errorf("the server wrote %d entries into its working directory", len(entries))
		}
		if code := s.stop(t, 20*time.Second); code != 0 {
			_, stderr := s.output()
			t.Errorf("exit code %d after SIGTERM, want 0 (graceful)\n%s", code, stderr)
		}
	})
}
