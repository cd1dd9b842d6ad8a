//go:build cuda

package main

import (
	"fmt"
	"io"
)

// runBridgeFit in the CUDA build: fitting trains networks, which is not part of it (see runTrain).
func runBridgeFit(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "scorekit bridge fit: not in the CUDA build (training uses gorgonia, whose CUDA backend, selected by the same tag, needs cuDNN): fit with the default build of scorekit; its bridge files sample on either build")
	return 2
}
