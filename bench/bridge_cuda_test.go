//go:build cuda || cudaemu

package bench

import "testing"

// BenchmarkBridgeSimulateCUDA is the bridge simulation of bridge_test.go on GPU 0: per step one
// fused MLP launch and one Combine launch, f32 and f64.
func BenchmarkBridgeSimulateCUDA(b *testing.B) { benchBridge(b, cudaScoreTarget(b)) }
