package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

func main() {
	loops := flag.String("loops", "", "list the loops of `module:entry[:arch]` and exit")
	outFile := flag.String("o", "", "write the section for bench/RESULTS.md to `file`")
	update := flag.String("update", "", "replace the performance model's section of `file` (bench/RESULTS.md)")
	flag.Parse()
	if err := run(*loops, *outFile, *update); err != nil {
		fmt.Fprintln(os.Stderr, "perfmodel:", err)
		os.Exit(1)
	}
}

func run(loops, outFile, update string) error {
	dir, err := os.MkdirTemp("", "perfmodel")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tc := &toolchain{ptxas: mustEnv("PTXAS", "ptxas"), cuobjdump: mustEnv("CUOBJDUMP", "cuobjdump"), dir: dir,
		cache: map[string]*assembled{}}
	if _, err := os.Stat("kernels/ptx"); err != nil {
		return fmt.Errorf("run from the repository root (make perf-model): %w", err)
	}
	for _, tool := range []string{tc.ptxas, tc.cuobjdump} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (the CUDA toolkit: make cuda-toolkit): %w", tool, err)
		}
	}
	if loops != "" {
		p := strings.Split(loops, ":")
		if len(p) < 2 {
			return fmt.Errorf("-loops %q: want module:entry[:arch]", loops)
		}
		arch := "sm_90"
		if len(p) > 2 {
			arch = p[2]
		}
		return tc.printLoops(p[0], p[1], arch)
	}
	commit := "unknown"
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--", "kernels", "ops", "bench/perfmodel", "internal/perfmodel").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			commit += " (with uncommitted changes)"
		}
	}
	date := time.Now().UTC().Format("2006-01-02")
	var buf bytes.Buffer
	heading := "#"
	if outFile != "" || update != "" {
		heading = "##"
	}
	if err := report(&buf, tc, workloads(), commit, date, heading); err != nil {
		return err
	}
	if outFile != "" {
		return os.WriteFile(outFile, buf.Bytes(), 0o644)
	}
	if update != "" {
		old, err := os.ReadFile(update)
		if err != nil {
			return err
		}
		return os.WriteFile(update, replaceSection(old, buf.Bytes()), 0o644)
	}
	_, err = os.Stdout.Write(buf.Bytes())
	return err
}

// sectionTitle starts the performance model's section of bench/RESULTS.md.
const sectionTitle = "## Performance model (predictions, not measurements)"

// replaceSection returns doc with its performance model section (from its title to the next
// level-2 heading or the end) replaced by section, or with section appended when doc has none.
func replaceSection(doc, section []byte) []byte {
	text := string(doc)
	start := strings.Index(text, sectionTitle+"\n")
	if start < 0 {
		return []byte(strings.TrimRight(text, "\n") + "\n\n" + string(section))
	}
	end := len(text)
	if next := strings.Index(text[start+len(sectionTitle):], "\n## "); next >= 0 {
		end = start + len(sectionTitle) + next + 1
	}
	out := text[:start] + string(section)
	if end < len(text) {
		out += "\n" + text[end:]
	}
	return []byte(out)
}
