package report

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The interval is Student's: for values 1…5 the mean is 3 and the half-width
// t₀.₉₇₅,₄ · sd/√5 = 2.776 · √2.5/√5.
func TestMeanCI95(t *testing.T) {
	m, h := MeanCI95([]float64{1, 2, 3, 4, 5})
	assert.InDelta(t, 3, m, 1e-12)
	assert.InDelta(t, 2.7764*math.Sqrt(2.5/5), h, 1e-3)
	_, h = MeanCI95([]float64{1})
	assert.True(t, math.IsNaN(h))
}
