//go:build gorgonia

package solvers

// gorgonia.org/gorgonia is the library scorekit uses for training small score networks. It is
// imported only under the `gorgonia` tag: its own CUDA build needs cuDNN, which scorekit's
// `cuda` build does not require.
import _ "gorgonia.org/gorgonia"
