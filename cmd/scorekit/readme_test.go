package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary stand in for the command: with SCOREKIT_AS_COMMAND=1 it is
// scorekit (the README's shell commands run it).
func TestMain(m *testing.M) {
	if os.Getenv("SCOREKIT_AS_COMMAND") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const readmePath = "../../README.md"

// fenced returns the bodies of the README's code blocks of the language lang, in order.
func fenced(t *testing.T, lang string) []string {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	require.NoError(t, err)
	re := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// goExample is an Example function of the repository: its body (dedented one tab) and the
// import paths of its file.
type goExample struct {
	name    string
	body    string
	imports map[string]bool
}

// repoExamples parses every _test.go file of the repository and returns its Example functions.
func repoExamples(t *testing.T) []goExample {
	t.Helper()
	var out []goExample
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "build") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return err
		}
		imports := map[string]bool{}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			imports[p] = true
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || !strings.HasPrefix(fn.Name.Name, "Example") || fn.Body == nil {
				continue
			}
			body := string(src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset])
			lines := strings.Split(strings.Trim(body, "\n"), "\n")
			for i, l := range lines {
				lines[i] = strings.TrimPrefix(l, "\t")
			}
			out = append(out, goExample{name: path + ": " + fn.Name.Name, body: strings.Join(lines, "\n"), imports: imports})
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// Every Go block of the README is an import list and the body of an Example function of the
// repository — compiled, run, and its output checked by go test — and it imports every package it
// names and nothing its example's file does not.
func TestReadmeGoBlocksAreExamples(t *testing.T) {
	examples := repoExamples(t)
	blocks := fenced(t, "go")
	require.NotEmpty(t, blocks)
	importRE := regexp.MustCompile(`(?s)^import \((.*?)\)\n\n`)
	for i, block := range blocks {
		m := importRE.FindStringSubmatch(block)
		require.NotNil(t, m, "README Go block %d does not start with its imports:\n%s", i+1, block)
		body := strings.TrimSpace(block[len(m[0]):])
		imports := map[string]bool{}
		for _, l := range strings.Fields(m[1]) {
			p, err := strconv.Unquote(l)
			require.NoError(t, err, "block %d: import %s", i+1, l)
			imports[p] = true
		}
		var match *goExample
		for k := range examples {
			if strings.TrimSpace(examples[k].body) == body {
				match = &examples[k]
			}
		}
		if !assert.NotNil(t, match, "README Go block %d is not the body of any Example function:\n%s", i+1, body) {
			continue
		}
		require.Contains(t, body, "// Output:", "%s has no checked output", match.name)
		for p := range imports {
			assert.True(t, match.imports[p], "block %d imports %s, which %s does not", i+1, p, match.name)
		}
		for p := range match.imports {
			if regexp.MustCompile(`\b` + regexp.QuoteMeta(filepath.Base(p)) + `\.`).MatchString(body) {
				assert.True(t, imports[p], "block %d uses %s without importing it", i+1, p)
			}
		}
	}
}

// readmeSkip are the README shell commands this test does not run, with the reason.
var readmeSkip = []struct{ prefix, why string }{
	{"make ", "make test is CI itself; the other targets need a toolkit or a GPU"},
	{"go test ", "the test suites run under make test"},
	{"go build ", "the CUDA build is compiled by make test where the toolkit is installed"},
	{"CGO_LDFLAGS=", "the CUDA build"},
	{"SCOREKIT_EMU_ORDER=", "the host execution of kernels runs under make test-emu"},
	{"build/gpu/", "needs a GPU machine"},
	{"BENCH=", "needs a GPU machine"},
}

// sizeFlags are capped so that the README's commands run quickly in the test.
var sizeFlags = map[string]int{"--n": 400, "--paths": 8, "--steps": 400}

// The README's shell commands, in order, in a fresh directory: each exits 0 (with the command
// played by this test binary, on the CPU, sizes capped by sizeFlags; the demo with --n 300).
func TestReadmeShellCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the README's commands")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	var script []string
	var ran, skipped int
	for _, block := range fenced(t, "sh") {
		lines := strings.Split(strings.TrimRight(block, "\n"), "\n")
		heredoc := ""
		for i := 0; i < len(lines); i++ {
			line := lines[i]
			if heredoc != "" { // the body of a here-document, to its terminator
				script = append(script, line)
				if line == heredoc {
					heredoc = ""
				}
				continue
			}
			for strings.HasSuffix(line, "\\") && i+1 < len(lines) { // continuation lines
				i++
				line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
			}
			if c := strings.Index(line, "  #"); c >= 0 { // a trailing comment
				line = strings.TrimRight(line[:c], " ")
			}
			if m := regexp.MustCompile(`<<'(\w+)'`).FindStringSubmatch(line); m != nil {
				heredoc = m[1]
			}
			skip := ""
			for _, s := range readmeSkip {
				if strings.HasPrefix(line, s.prefix) {
					skip = s.why
				}
			}
			if skip != "" {
				t.Logf("not run (%s): %s", skip, line)
				skipped++
				continue
			}
			if strings.HasPrefix(line, "go run ./cmd/scorekit") {
				line = readmeCommand(strings.Fields(strings.TrimPrefix(line, "go run ./cmd/scorekit")))
				ran++
			}
			script = append(script, line)
		}
	}
	require.Greater(t, ran, 10, "scorekit commands found in the README")
	dir := t.TempDir()
	cmd := exec.Command("sh", "-e", "-x", "-c", strings.Join(script, "\n"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SCOREKIT_AS_COMMAND=1", "SCOREKIT="+exe)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "a README command failed (sh -x trace; the last '+' line):\n%s", out.String())
	t.Logf("ran %d scorekit commands, skipped %d lines", ran, skipped)
	_, err = os.Stat(filepath.Join(dir, "out", "samples.png"))
	assert.NoError(t, err, "the README's outputs go to out/")
}

// readmeCommand is the shell line running this test binary as scorekit with args, sizes capped.
func readmeCommand(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if limit, ok := sizeFlags[args[i]]; ok {
			if v, err := strconv.Atoi(args[i+1]); err == nil && v > limit {
				args[i+1] = strconv.Itoa(limit)
			}
		}
	}
	if len(args) > 0 && args[0] == "demo" {
		args = append(args, "--n", "300", "--dir", "out/demo")
	}
	return `"$SCOREKIT" ` + strings.Join(args, " ")
}
