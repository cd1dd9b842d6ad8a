package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/cuda"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// deviceFlagHelp documents --device in a command's help whose flag descriptions start at column
// col (counting from 0).
func deviceFlagHelp(col int) string {
	lines := wrapWords(`auto, cpu, cuda (GPU 0), cuda:N, or several GPUs: cuda:0,1,… or cuda:all (the rows
split over them by index and gathered in order: the same output); default auto: GPU 0 in a -tags
cuda build, else the CPU; a GPU in the default CPU-only build fails, telling how to build with
CUDA`, 96-col)
	var b strings.Builder
	b.WriteString(fmt.Sprintf("  %-*s", col-2, "--device D") + lines[0] + "\n")
	for _, l := range lines[1:] {
		b.WriteString(strings.Repeat(" ", col) + l + "\n")
	}
	return b.String()
}

// deviceSpec is a parsed --device.
type deviceSpec struct {
	name     string // as given
	kind     string // auto, cpu or cuda
	all      bool   // cuda:all
	ordinals []int  // cuda:0,1 (nil for cuda: GPU 0)
}

// parseDeviceFlag parses --device: auto, cpu, cuda, cuda:N, cuda:N,M,… or cuda:all.
func parseDeviceFlag(name string) (deviceSpec, error) {
	s := deviceSpec{name: name, kind: name}
	switch name {
	case "auto", "cpu", "cuda":
		return s, nil
	}
	list, ok := strings.CutPrefix(name, "cuda:")
	if !ok {
		return s, usagef("--device must be auto, cpu, cuda, cuda:N, cuda:N,M,… or cuda:all (got %q)", name)
	}
	s.kind = "cuda"
	if list == "all" {
		s.all = true
		return s, nil
	}
	seen := map[int]bool{}
	for _, f := range strings.Split(list, ",") {
		i, err := strconv.Atoi(f)
		if err != nil || i < 0 || i > 1023 {
			return s, usagef("--device %s: %q is not a GPU number (want cuda:N, cuda:N,M,… or cuda:all)", name, f)
		}
		if seen[i] {
			return s, usagef("--device %s: GPU %d is named twice", name, i)
		}
		seen[i] = true
		s.ordinals = append(s.ordinals, i)
	}
	return s, nil
}

// checkDeviceFlag validates the value of --device.
func checkDeviceFlag(name string) error {
	_, err := parseDeviceFlag(name)
	return err
}

// The CUDA devices as the command sees them (variables so that the command's tests can stand CPU
// backends in for several GPUs in the CPU-only build).
var (
	cudaBuild       = tensor.CUDABuild
	cudaDeviceCount = tensor.CUDADeviceCount
	openCUDABackend = func(ordinal int) (ops.Backend, func() error, error) {
		dev, err := tensor.OpenCUDA(ordinal)
		if err != nil {
			return nil, nil, fmt.Errorf("open GPU %d (--device cpu runs on the CPU instead): %w", ordinal, err)
		}
		b, err := cuda.New(dev)
		if err != nil {
			dev.Close()
			return nil, nil, fmt.Errorf("cuda backend on %s: %w", dev.Name(), err)
		}
		return b, func() error { return errors.Join(b.Close(), dev.Close()) }, nil
	}
)

// openBackends returns the backends of --device name, one per device in the order given (cuda:all:
// every GPU the driver sees), and a cleanup that closes them all. Unless quiet it says on stderr
// which devices are used. A GPU that does not exist is a usageError naming it, and nothing is left
// open.
func openBackends(name string, quiet bool, stderr io.Writer) ([]ops.Backend, func() error, error) {
	spec, err := parseDeviceFlag(name)
	if err != nil {
		return nil, nil, err
	}
	kind := spec.kind
	if kind == "auto" {
		kind = "cpu"
		if cudaBuild {
			kind = "cuda"
		}
	}
	if kind == "cpu" {
		b := ops.CPU()
		if !quiet {
			fmt.Fprintf(stderr, "scorekit: device %s\n", describeDevice(b.Device()))
		}
		return []ops.Backend{b}, b.Close, nil
	}
	if !cudaBuild {
		return nil, nil, usagef("--device %s: %w", name, tensor.ErrNoCUDA)
	}
	ordinals := spec.ordinals
	if ordinals == nil {
		ordinals = []int{0}
	}
	if spec.all || len(spec.ordinals) > 0 {
		count, err := cudaDeviceCount()
		if err != nil {
			return nil, nil, err
		}
		if spec.all {
			ordinals = nil
			for i := 0; i < count; i++ {
				ordinals = append(ordinals, i)
			}
			if count == 0 {
				return nil, nil, usagef("--device cuda:all: no GPU found")
			}
		}
		for _, i := range ordinals {
			if i >= count {
				return nil, nil, usagef("--device %s: GPU %d does not exist (%d found: cuda:0 … cuda:%d)", name, i, count, count-1)
			}
		}
	}
	var backends []ops.Backend
	var cleanups []func() error
	closeAll := func() error {
		var errs []error
		for i := len(cleanups) - 1; i >= 0; i-- {
			errs = append(errs, cleanups[i]())
		}
		return errors.Join(errs...)
	}
	var names []string
	for _, i := range ordinals {
		b, c, err := openCUDABackend(i)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		backends, cleanups = append(backends, b), append(cleanups, c)
		names = append(names, describeDevice(b.Device()))
	}
	if !quiet {
		label := "device"
		if len(names) > 1 {
			label = "devices"
		}
		fmt.Fprintf(stderr, "scorekit: %s %s\n", label, strings.Join(names, ", "))
	}
	return backends, closeAll, nil
}

// deviceNames joins the names of the backends' devices ("cuda:0, cuda:1").
func deviceNames(bs []ops.Backend) string {
	var names []string
	for _, b := range bs {
		names = append(names, b.Device().Name())
	}
	return strings.Join(names, ", ")
}

// describeDevice is a one-line description: "cpu", "cuda:0 (NVIDIA H100 …, compute 9.0, 79.1 GiB)".
func describeDevice(dev tensor.Device) string {
	info := dev.Info()
	if info.Kind != tensor.KindCUDA {
		return dev.Name()
	}
	return fmt.Sprintf("%s (%s, compute %d.%d, %s)", dev.Name(), info.Name, info.Major, info.Minor,
		tensor.HumanBytes(info.TotalMemory))
}

// memInfoer is implemented by devices that report their free memory (tensor.CUDADevice).
type memInfoer interface {
	MemInfo() (free, total int64, err error)
}

// checkFits refuses a tensor of the given bytes when dev cannot hold it, or when the host cannot
// hold the copy written to disk. what names the size in the flags' terms ("--n 10 × --dim 3 f32").
// Where the free memory is unknown, nothing is refused.
func checkFits(dev tensor.Device, bytes int64, what string) error {
	if m, ok := dev.(memInfoer); ok {
		free, _, err := m.MemInfo()
		if err != nil {
			return fmt.Errorf("%s: free memory: %w", dev.Name(), err)
		}
		if bytes > free {
			return usagef("%s needs %s; %s has %s free", what, tensor.HumanBytes(bytes), dev.Name(),
				tensor.HumanBytes(free))
		}
	}
	if avail := hostAvailableMemory(); avail > 0 && bytes > avail {
		return usagef("%s needs %s; the host has %s available", what, tensor.HumanBytes(bytes),
			tensor.HumanBytes(avail))
	}
	return nil
}

// checkFitsOn refuses a run of n rows of rowBytes each spread over the backends (by SplitRange)
// when a device cannot hold its part or the host the gathered whole.
func checkFitsOn(bs []ops.Backend, n int, rowBytes int64, what string) error {
	if len(bs) == 1 {
		return checkFits(bs[0].Device(), int64(n)*rowBytes, what)
	}
	for k, b := range bs {
		lo, hi := solvers.SplitRange(n, len(bs), k)
		if err := checkFits(b.Device(), int64(hi-lo)*rowBytes, fmt.Sprintf("%s (its part %d…%d)", what, lo, hi-1)); err != nil {
			return err
		}
	}
	return checkFits(tensor.CPU(), int64(n)*rowBytes, what)
}

// hostAvailableMemory returns the host memory available to new allocations in bytes (Linux's
// MemAvailable), or 0 when unknown.
func hostAvailableMemory() int64 { return meminfo("MemAvailable") }

// hostTotalMemory returns the host's total memory in bytes, or 0 when unknown.
func hostTotalMemory() int64 { return meminfo("MemTotal") }

// meminfo returns the field of /proc/meminfo called key in bytes, or 0 when it cannot be read.
func meminfo(key string) int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		fields := strings.Fields(v) // "16318412 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return 0
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// parseDTypeFlag parses --dtype (f32/float32, f64/float64) as a usage error when it is neither.
func parseDTypeFlag(s string) (tensor.DType, error) {
	dt, err := tensor.ParseDType(s)
	if err != nil {
		return 0, usagef("--dtype must be f32 or f64 (got %q)", s)
	}
	return dt, nil
}
