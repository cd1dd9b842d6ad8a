//go:build cuda || cudaemu

package tensor

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openGPU(t *testing.T) *CUDADevice {
	t.Helper()
	d, err := OpenCUDA(0)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, d.Close()) })
	return d
}

func TestCUDAInfo(t *testing.T) {
	d := openGPU(t)
	info := d.Info()
	t.Logf("%s: %s, sm_%d%d, %d SMs, %s, %.0f GB/s peak, driver %d", d.Name(), info.Name, info.Major, info.Minor,
		info.SMs, HumanBytes(info.TotalMemory), info.PeakBandwidth()/1e9, info.Driver)
	assert.NotEmpty(t, info.Name)
	assert.GreaterOrEqual(t, info.Major, 5)
	assert.Positive(t, info.SMs)
	assert.Positive(t, info.TotalMemory)
	if !info.Emulated { // an emulated device has no memory clock
		assert.Positive(t, info.PeakBandwidth())
	}
	_, err := OpenCUDA(1 << 20)
	assert.ErrorContains(t, err, "does not exist")
}

func TestCUDACopyRoundTripAndLeaks(t *testing.T) {
	d := openGPU(t)
	for _, n := range []int{0, 1, 3, 1025, 1 << 20} {
		for _, dt := range []DType{F32, F64} {
			h, _ := New(nil, dt, n)
			for i := 0; i < n; i++ {
				if dt == F32 {
					h.f32[i] = float32(math.Sin(float64(i)))
				} else {
					h.f64[i] = math.Sin(float64(i))
				}
			}
			g, err := h.CopyTo(d)
			require.NoError(t, err)
			assert.Equal(t, g.Bytes(), d.Allocated())
			g2, err := New(d, dt, n)
			require.NoError(t, err)
			require.NoError(t, g2.CopyFrom(g)) // device to device
			back, err := g2.CopyTo(nil)
			require.NoError(t, err)
			a, _ := h.Float64s()
			b, _ := back.Float64s()
			assert.Equal(t, a, b, "n=%d %v", n, dt)
			// A view of the device tensor copies the right slice.
			if n >= 3 {
				v, err := g.View(1, 2)
				require.NoError(t, err)
				vh, err := v.CopyTo(nil)
				require.NoError(t, err)
				vv, _ := vh.Float64s()
				assert.Equal(t, a[1:3], vv)
				require.NoError(t, v.Close())
			}
			require.NoError(t, g.Close())
			require.NoError(t, g2.Close())
			assert.Zero(t, d.Allocated(), "all device memory freed")
		}
	}
}

func TestCUDAOutOfMemoryIsAnError(t *testing.T) {
	d := openGPU(t)
	_, err := New(d, F64, int(d.Info().TotalMemory/8)*2)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "allocate")
	assert.Zero(t, d.Allocated())
}

func TestCUDALaunchRefusesFourByteArguments(t *testing.T) {
	d := openGPU(t)
	x, _ := New(d, F32, 4)
	defer x.Close()
	err := d.Launch(Kernel{Name: "k"}, Grid1D(1, 1), x, float32(1))
	assert.ErrorContains(t, err, "8-byte")
	err = d.Launch(Kernel{Name: "k"}, Grid1D(1, 1), int32(1))
	assert.ErrorContains(t, err, "8-byte")
	h, _ := New(nil, F32, 4)
	err = d.Launch(Kernel{Name: "k"}, Grid1D(1, 1), h)
	assert.ErrorContains(t, err, "is on cpu")
}

func TestCUDAClosedDeviceErrors(t *testing.T) {
	d, err := OpenCUDA(0)
	require.NoError(t, err)
	require.NoError(t, d.Close())
	require.NoError(t, d.Close())
	_, err = New(d, F32, 4)
	assert.ErrorContains(t, err, "closed")
}
