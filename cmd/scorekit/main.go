// Command scorekit runs score-based samplers, evaluates targets (log-density, score, denoiser) and
// draws random numbers on the CPU or an NVIDIA GPU, writing NumPy .npy files.
//
//	scorekit demo                        samplers on a built-in 2-D mixture at equal score budget
//	scorekit info                        version, build, devices and embedded kernels
//	scorekit sample --target T.json --method M --n N --steps K --seed S [--device auto|cpu|cuda]
//	               [--dtype f32|f64] --out X.npy [--trajectory TR.npy] [--plot P.png] [--stats S.json]
//	               [method flags]
//	scorekit noise normal|uniform --n N [--dim D] [--seed S] [--site K] [--dtype f32|f64]
//	               [--device auto|cpu|cuda] [--quiet] --out X.npy
//	scorekit noise fgn|fbm --hurst H --length L --paths N [--horizon T]
//	               [--method davies-harte|cholesky|mafbm] [--k K] [--seed S] --out P.npy [--plot P.png]
//	scorekit noise stable --alpha A [--beta B] [--dim D] --n N [--isotropic] [--seed S] --out X.npy
//	scorekit noise bridge --length L --paths N [--horizon T] --epoch E --out P.npy
//	scorekit optimize fpgd --objective J.json --hurst H --step h --sigma s --steps K --n N
//	               [--x0 x1,...] [--method M] [--seed S] [--device auto|cpu|cuda] --out P.npy
//	               [--trace TR.npy] [--stats S.json] [--plot P.png]
//	scorekit optimize sgdo --objective J.json --beta B --step h --sigma s --steps K --epoch T --n N
//	               [--x0 x1,...] [--seed S] [--device auto|cpu|cuda] --out P.npy
//	               [--trace TR.npy] [--stats S.json] [--plot P.png]
//	scorekit score --target T.json (--sigma S | --time T) --in X.npy --out D.npy
//	               [--what logp|score|denoiser] [--dtype f32|f64] [--device auto|cpu|cuda] [--quiet]
//	scorekit sde simulate --spec S.json --out X.npy [--trajectory TR.npy] [--plot P.png]
//	               [--stats S.json] [--dtype f32|f64] [--device auto|cpu|cuda] [--quiet]
//	scorekit sde grad --spec S.json --loss terminal-mean|terminal-var [--wrt-x0] [--json]
//	scorekit bridge fit --snapshots t0.npy,t1.npy,… --times 0,1,… --out M.safetensors [--eps ε]
//	               [--iterations K] [--width W] [--depth L] [--steps N] [--seed S] [--stats S.json]
//	scorekit bridge sample --model M.safetensors --from T --to T --in X.npy --out Y.npy
//	               [--steps S] [--seed S] [--trajectory TR.npy] [--device auto|cpu|cuda] [--stats S.json]
//	scorekit train --data D.npy --width W --depth L --steps N --out M.safetensors [--blocks 1|2]
//	               [--seed S] [--lr η] [--batch B] [--param P] [--stats S.json] [--quiet]
//	scorekit merge --out X.npy [--stats S.json] [--quiet] SHARD.npy...
//
// sample, noise and optimize take --shard i/n (or env, env/n: the index from a Slurm array job or
// a Kubernetes Indexed Job): the run computes only the rows [⌊iN/n⌋, ⌊(i+1)N/n⌋), bit for bit the
// unsplit run's, and writes a manifest beside each .npy output; merge checks the manifests and
// joins the shards into the unsplit run's file.
//
// The default build is CPU-only. A binary built with `-tags cuda` runs on NVIDIA GPUs, and only
// starts where an NVIDIA driver and GPU answer: gorgonia.org/cu initialises CUDA when the program
// loads and exits the process if that fails, before any scorekit code runs.
//
// Exit status: 0 on success; 2 for bad usage or bad input (unknown command or flag, a value out of
// range, a device this build does not have), with one line on stderr naming the flag and the
// problem and nothing written; 1 for failures while running (I/O, device), also one line.
// Output files are written atomically: a failed run leaves no partial file and never overwrites an
// existing one.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// version is the scorekit release this command belongs to.
const version = "0.1.0-dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// command is one subcommand: run gets the arguments after its name and returns the exit status.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"bridge", "fit a Schrödinger bridge to snapshots of a population at several times, and move points along it", runBridge},
		{"demo", "compare samplers at equal score-evaluation budget on a built-in Gaussian mixture", runDemo},
		{"info", "version, build, devices and embedded kernel modules", runInfo},
		{"merge", "join the shards of a run (--shard i/n) into the unsplit run's file, checked", runMerge},
		{"noise", "draw random numbers to a .npy file (normal, uniform, fgn, fbm, stable, bridge)", runNoise},
		{"optimize", "noisy gradient descent on an objective file: fractional noise (fpgd), SGD without replacement (sgdo)", runOptimize},
		{"score", "evaluate a target's log-density, score or denoiser at the points of a .npy file", runScore},
		{"sample", "run a sampler (Langevin, RTK, diffusion, rectified flow, constrained) on a target file", runSample},
		{"sde", "reversible Heun paths of an SDE spec (simulate) and the adjoint gradient of a loss (grad)", runSDE},
		{"train", "fit a learned denoiser network to the points of a .npy file (score matching, CPU)", runTrain},
	}
}

const buildNote = `Builds: the default build is CPU-only. A binary built with -tags cuda runs on NVIDIA GPUs,
but only starts on a machine where an NVIDIA driver and GPU answer: gorgonia.org/cu initialises
CUDA when the program loads and otherwise exits at once with status 1 (printing its own
"Error in initialization" line), before scorekit runs, even for --help. Use the default build on
machines without a GPU.
`

func usage(w io.Writer) {
	fmt.Fprintf(w, "scorekit %s — score-based sampling on the CPU or an NVIDIA GPU.\n\n", version)
	fmt.Fprintf(w, "Usage:\n  scorekit <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-8s %s\n", "help", "this message; help <command> for a command's flags")
	fmt.Fprintf(w, "  %-8s %s\n", "version", "the version, Go version, platform and build (also --version)")
	fmt.Fprintf(w, "\nRun 'scorekit <command> --help' for a command's flags.\n\n%s", buildNote)
}

// run runs the command line args (without the program name) and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "--version", "-version", "version":
		fmt.Fprintf(stdout, "scorekit %s (%s, %s/%s, %s build)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH,
			strings.Fields(buildName())[0])
		return 0
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && name == "help" {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(args[1:], stdout, stderr)
		}
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	fmt.Fprintf(stderr, "scorekit: unknown command %q (commands: %s; see scorekit --help)\n",
		name, strings.Join(names, ", "))
	return 2
}

// usageError marks bad usage or bad input: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitStatus reports err on stderr as one line prefixed with the command's name and returns the
// exit status: 0 for nil or a help request, 2 for a usageError, 1 otherwise.
func exitStatus(stderr io.Writer, name string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	fmt.Fprintf(stderr, "%s: %s\n", name, msg)
	if errors.As(err, new(usageError)) {
		return 2
	}
	return 1
}

// newFlagSet returns a FlagSet that prints nothing itself: parse reports errors as one line and
// prints help only when it is asked for.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args into fs. Asked for help (-h, --help), it prints help to stdout and returns
// flag.ErrHelp; a bad flag or a stray argument is a usageError.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer, help string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, help)
			return err
		}
		return usagef("%v (see %s --help)", err, fs.Name())
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (flags go before it; see %s --help)", fs.Arg(0), fs.Name())
	}
	return nil
}

// isSet reports whether the flag called name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
