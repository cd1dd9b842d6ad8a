// Package train fits ops.MLP denoisers by denoising score matching, with gorgonia on the CPU.
package train
