// Package nn stores learned denoisers (ops.MLP) as checkpoints in the safetensors format, so that a
// network trained here can be read by PyTorch (bench/peers/mlp_torch.py, or the safetensors
// package) and one trained there can be sampled by scorekit.
//
// A checkpoint is a safetensors file (https://github.com/huggingface/safetensors, the format's
// README): an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the tensor bytes,
// little-endian and row-major, packed without gaps. The JSON maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the first byte after the
// header) and holds an optional "__metadata__" object of strings. The tensors are the network's
// parameters under their canonical names (ops.MLPParamNames: data.mean, embed.freq, input.weight,
// input.bias, blocks.<l>.<j>.weight/bias, output.weight, output.bias — the state_dict keys of the
// PyTorch module) and, optionally, data.cov, the (d, d) data covariance the samplers use for an
// exact start. The metadata describes the architecture completely (format, format_version, dim,
// width, depth, block_layers, fourier, sigma_data, branch_mult, out_mult, activation, embedding,
// preconditioning; numbers as decimal strings that round-trip float64), so a reader needs nothing
// but the file; every other metadata key is free-form training information (Meta.Info).
//
// The writer follows the reference implementation: the header is JSON with "__metadata__" first
// and the tensors in offset order, padded with spaces to a multiple of 8 bytes so that every
// tensor starts aligned (TestSafetensorsReferenceBytes checks the reference's own test files byte
// for byte). The data section holds the tensors in canonical order (the reference sorts by name;
// the format leaves the order free), float64 by default (float32 on request, Meta.DType). Files are
// replaced atomically (temporary file, fsync, rename).
//
// The reader treats the file as untrusted: the header length is capped (MaxHeaderBytes, the
// reference's 100 MB), the JSON must be one object with no duplicate key at any level and no
// unknown field in a tensor entry, offsets must tile the data exactly (sorted by begin, no gap, no
// overlap, end = data length, zero-size tensors allowed), each range must hold exactly
// shape × dtype size bytes (with overflow checks), and the data must end where the last tensor
// ends. F64 and F32 tensors are read; any other dtype is an error naming the tensor. Values must be
// finite. Every error is one line naming the file (Load) and the problem; no input panics
// (FuzzRead).
//
// The reader and writer are written here rather than taken from a Go safetensors package: the
// format is a few dozen lines, the checks above are the point, and the module takes no new
// dependency for them.
//
// What may not live here: training (it produces an ops.MLP and calls Save), sampling (package
// solvers), device code.
package nn
