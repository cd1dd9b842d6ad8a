package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/scorekit/scorekit/kernels"
	"github.com/scorekit/scorekit/tensor"
)

const infoHelp = `Usage: scorekit info

Prints the scorekit version, the Go version and platform, the build (cpu or cuda), the devices
found (CPU: logical CPUs and memory; each GPU: name, compute capability, multiprocessors, memory,
peak memory bandwidth, driver version) and the CUDA kernel modules embedded in the binary as PTX.
`

// runInfo is `scorekit info`.
func runInfo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("scorekit info")
	if err := parse(fs, args, stdout, infoHelp); err != nil {
		return exitStatus(stderr, fs.Name(), err)
	}
	return exitStatus(stderr, fs.Name(), info(stdout))
}

func info(w io.Writer) error {
	fmt.Fprintf(w, "scorekit  %s\n", version)
	fmt.Fprintf(w, "go        %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "build     %s\n", buildName())

	fmt.Fprintf(w, "devices\n")
	cpu := fmt.Sprintf("%d logical CPUs", tensor.CPU().Info().SMs)
	if mem := hostTotalMemory(); mem > 0 {
		cpu += ", " + tensor.HumanBytes(mem) + " memory"
	}
	fmt.Fprintf(w, "  %-8s %s\n", "cpu", cpu)
	if !tensor.CUDABuild {
		fmt.Fprintf(w, "  %-8s not in this build\n", "cuda")
	} else {
		n, err := tensor.CUDADeviceCount()
		if err != nil {
			fmt.Fprintf(w, "  %-8s %v\n", "cuda", err)
		} else if n == 0 {
			fmt.Fprintf(w, "  %-8s no device found\n", "cuda")
		}
		for i := 0; i < n; i++ {
			dev, err := tensor.OpenCUDA(i)
			if err != nil {
				fmt.Fprintf(w, "  cuda:%-3d %v\n", i, err)
				continue
			}
			fmt.Fprintf(w, "  %-8s %s\n", dev.Name(), describeGPU(dev.Info()))
			if err := dev.Close(); err != nil {
				return err
			}
		}
	}

	mods := kernels.Modules()
	fmt.Fprintf(w, "kernels   %d embedded PTX module(s)\n", len(mods))
	width := 0
	for _, m := range mods {
		width = max(width, len(m))
	}
	for _, m := range mods {
		ptx, err := kernels.PTX(m)
		if err != nil {
			fmt.Fprintf(w, "  %-*s  %v\n", width, m, err)
			continue
		}
		entries := 0
		for _, e := range kernels.Entries() {
			if e.Module == m {
				entries++
			}
		}
		fmt.Fprintf(w, "  %-*s  %2d entries, %s\n", width, m, entries, describePTX(ptx))
	}
	return nil
}

// buildName says which build this is.
func buildName() string {
	switch {
	case tensor.CUDAEmulated:
		return "cudaemu (CUDA kernels executed on the host, for testing; -tags cudaemu)"
	case tensor.CUDABuild:
		return "cuda (-tags cuda)"
	}
	return "cpu (default build; rebuild with -tags cuda for NVIDIA GPUs)"
}

// describeGPU is the info line of one GPU.
func describeGPU(i tensor.DeviceInfo) string {
	s := fmt.Sprintf("%s, compute %d.%d, %d SMs, %s memory", i.Name, i.Major, i.Minor, i.SMs,
		tensor.HumanBytes(i.TotalMemory))
	if bw := i.PeakBandwidth(); bw > 0 {
		s += fmt.Sprintf(", peak %.0f GB/s", bw/1e9)
	}
	if i.Driver > 0 {
		s += fmt.Sprintf(", driver CUDA %d.%d", i.Driver/1000, i.Driver%1000/10)
	}
	return s
}

// describePTX summarises a PTX module from its header: "PTX ISA 8.0, target sm_80, 41.2 KiB".
func describePTX(ptx string) string {
	var parts []string
	for _, line := range strings.Split(ptx, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case ".version":
			parts = append(parts, "PTX ISA "+f[1])
		case ".target":
			parts = append(parts, "target "+strings.Join(f[1:], " "))
		}
		if len(parts) == 2 {
			break
		}
	}
	return strings.Join(append(parts, tensor.HumanBytes(int64(len(ptx)))), ", ")
}
