//go:build cuda

package main

import (
	"fmt"
	"io"
)

// runTrain in the CUDA build: training is not part of it, because the cuda tag also selects
// gorgonia's own CUDA backend, which needs cuDNN (see package train).
func runTrain(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "scorekit train: not in the CUDA build (gorgonia's CUDA backend, selected by the same tag, needs cuDNN): train with the default build of scorekit; its checkpoints sample on either build")
	return 2
}
