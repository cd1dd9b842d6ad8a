//go:build cuda || cudaemu

package bench

import "testing"

// BenchmarkMLPScoreCUDA is MLPScore (score and denoiser in one call, one kernel launch) on GPU 0
// over the sweep of mlp_test.go: W ∈ {64, 128, 256}, L ∈ {4, 8}, N ∈ {4096, 65536}, f32 and f64.
func BenchmarkMLPScoreCUDA(b *testing.B) { benchMLPScore(b, cudaScoreTarget(b), mlpCases) }
