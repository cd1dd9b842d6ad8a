package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The array-job recipes of examples/cluster run here as local processes, one per task, with the
// environment the scheduler would give each; their merge equals the same command line run
// unsplit, byte for byte.

const recipesDir = "../../examples/cluster"

// recipeShell runs script in dir with bash when it starts with #!/bin/bash (a Slurm batch
// script), sh otherwise, with scorekit on PATH (this test binary) and env added.
func recipeShell(t *testing.T, exe, dir, script string, env ...string) error {
	t.Helper()
	shell := "/bin/sh"
	if strings.HasPrefix(script, "#!/bin/bash") {
		shell = "/bin/bash"
	}
	cmd := exec.Command(shell, "-c", script)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PATH="+filepath.Dir(exe)+":"+os.Getenv("PATH")), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, out.String())
	}
	return nil
}

// runTasks runs the script once per environment, all at once.
func runTasks(t *testing.T, exe, dir, script string, envs [][]string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(envs))
	for i, env := range envs {
		wg.Add(1)
		go func(i int, env []string) {
			defer wg.Done()
			errs[i] = recipeShell(t, exe, dir, script, env...)
		}(i, env)
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "task %d (%v)", i, envs[i])
	}
}

func readRecipe(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(recipesDir, name))
	require.NoError(t, err)
	return string(b)
}

// recipeDir is a working directory holding the recipes' target.json.
func recipeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(recipesDir, "target.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "target.json"), b, 0o644))
	return dir
}

func requireSameFile(t *testing.T, want, got string) {
	t.Helper()
	a, err := os.ReadFile(want)
	require.NoError(t, err)
	b, err := os.ReadFile(got)
	require.NoError(t, err)
	require.True(t, bytes.Equal(a, b), "%s differs from %s", got, want)
}

func TestSlurmRecipe(t *testing.T) {
	exe := commandBinary(t)
	sample, merge := readRecipe(t, "sample.sbatch"), readRecipe(t, "merge.sbatch")
	m := regexp.MustCompile(`(?m)^#SBATCH --array=(\d+)-(\d+)$`).FindStringSubmatch(sample)
	require.NotNil(t, m, "sample.sbatch declares a contiguous --array=A-B")
	lo, _ := strconv.Atoi(m[1])
	hi, _ := strconv.Atoi(m[2])
	require.Contains(t, sample, " --shard env --out ")
	dir := recipeDir(t)
	size := []string{"N=203", "STEPS=7"} // small; 8 tasks of 25 or 26 chains
	var envs [][]string
	for id := lo; id <= hi; id++ {
		envs = append(envs, append([]string{"SLURM_ARRAY_TASK_ID=" + strconv.Itoa(id), "SLURM_ARRAY_TASK_MIN=" + m[1],
			"SLURM_ARRAY_TASK_COUNT=" + strconv.Itoa(hi-lo+1), "SLURM_ARRAY_TASK_STEP=1", "SLURM_ARRAY_JOB_ID=77"}, size...))
	}
	runTasks(t, exe, dir, sample, envs)
	require.NoError(t, recipeShell(t, exe, dir, merge, size...))
	// The same command line without --shard, once.
	unsplit := strings.Replace(sample, " --shard env --out ", " --out ", 1)
	require.NoError(t, recipeShell(t, exe, dir, unsplit, append(size, "OUT=full", "SLURM_ARRAY_TASK_ID=all")...))
	requireSameFile(t, filepath.Join(dir, "full", "x.all.npy"), filepath.Join(dir, "x.npy"))
	st := readStats(t, filepath.Join(dir, "stats.json"))
	assert.Equal(t, 203.0, st["n"])
	assert.Len(t, st["shards"], hi-lo+1)
}

// yamlScript returns the shell script of a Job manifest: the block scalar under "args:".
func yamlScript(t *testing.T, manifest string) string {
	t.Helper()
	lines := strings.Split(manifest, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "- |" || i == 0 || strings.TrimSpace(lines[i-1]) != "args:" {
			continue
		}
		indent := -1
		var body []string
		for _, s := range lines[i+1:] {
			if strings.TrimSpace(s) == "" {
				body = append(body, "")
				continue
			}
			n := len(s) - len(strings.TrimLeft(s, " "))
			if indent < 0 {
				indent = n
			}
			if n < indent {
				break
			}
			body = append(body, s[indent:])
		}
		return strings.Join(body, "\n")
	}
	t.Fatal("no args: - | block in the manifest")
	return ""
}

func TestKubernetesRecipe(t *testing.T) {
	exe := commandBinary(t)
	job, mergeJob := readRecipe(t, "indexed-job.yaml"), readRecipe(t, "merge-job.yaml")
	assert.Contains(t, job, "completionMode: Indexed")
	m := regexp.MustCompile(`(?m)^\s+completions: (\d+)$`).FindStringSubmatch(job)
	require.NotNil(t, m)
	n, _ := strconv.Atoi(m[1])
	script := yamlScript(t, job)
	shard := fmt.Sprintf("--shard env/%d ", n)
	require.Contains(t, script, shard, "the script's shard count is the Job's completions")
	dir := recipeDir(t)
	size := []string{"N=101", "STEPS=5", "DATA=" + dir}
	var envs [][]string
	for i := 0; i < n; i++ {
		envs = append(envs, append([]string{"JOB_COMPLETION_INDEX=" + strconv.Itoa(i)}, size...))
	}
	runTasks(t, exe, dir, script, envs)
	require.NoError(t, recipeShell(t, exe, dir, yamlScript(t, mergeJob), size...))
	full := t.TempDir()
	require.NoError(t, os.Link(filepath.Join(dir, "target.json"), filepath.Join(full, "target.json")))
	unsplit := strings.Replace(script, shard, "", 1)
	require.NoError(t, recipeShell(t, exe, full, unsplit, "N=101", "STEPS=5", "DATA="+full, "JOB_COMPLETION_INDEX=all"))
	requireSameFile(t, filepath.Join(full, "shards", "x.all.npy"), filepath.Join(dir, "x.npy"))
}
