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
	"github.com/scorekit/scorekit/tensor"
)

// deviceFlagHelp documents --device in a command's help whose flag descriptions start at column
// col (counting from 0).
func deviceFlagHelp(col int) string {
	pad := strings.Repeat(" ", col)
	return fmt.Sprintf("  %-*s", col-2, "--device D") + "auto, cpu or cuda (default auto: the GPU in a -tags cuda build, else the\n" +
		pad + "CPU); cuda in the default CPU-only build fails, telling how to build with CUDA\n"
}

// checkDeviceFlag validates the value of --device.
func checkDeviceFlag(name string) error {
	switch name {
	case "auto", "cpu", "cuda":
		return nil
	}
	return usagef("--device must be auto, cpu or cuda (got %q)", name)
}

// openBackend returns the backend for --device name (auto: GPU 0 in a cuda build, else the CPU)
// and a cleanup that closes the backend and then its device. Unless quiet it says on stderr which
// device is used. Asking for cuda in a CPU build is a usageError carrying tensor.ErrNoCUDA.
func openBackend(name string, quiet bool, stderr io.Writer) (ops.Backend, func() error, error) {
	if err := checkDeviceFlag(name); err != nil {
		return nil, nil, err
	}
	if name == "auto" {
		name = "cpu"
		if tensor.CUDABuild {
			name = "cuda"
		}
	}
	if name == "cpu" {
		b := ops.CPU()
		if !quiet {
			fmt.Fprintf(stderr, "scorekit: device %s\n", describeDevice(b.Device()))
		}
		return b, b.Close, nil
	}
	if !tensor.CUDABuild {
		return nil, nil, usagef("--device cuda: %w", tensor.ErrNoCUDA)
	}
	dev, err := tensor.OpenCUDA(0)
	if err != nil {
		return nil, nil, fmt.Errorf("open GPU 0 (--device cpu runs on the CPU instead): %w", err)
	}
	b, err := cuda.New(dev)
	if err != nil {
		dev.Close()
		return nil, nil, fmt.Errorf("cuda backend on %s: %w", dev.Name(), err)
	}
	if !quiet {
		fmt.Fprintf(stderr, "scorekit: device %s\n", describeDevice(dev))
	}
	cleanup := func() error { return errors.Join(b.Close(), dev.Close()) }
	return b, cleanup, nil
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
