package ops

// FFT contract: see Backend.FFT. The CPU reference and its checks live here.
