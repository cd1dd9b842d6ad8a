// Package target reads the target files of the scorekit command (T.json, see the command's
// documentation) into the op types of package ops, and evaluates them on any ops.Backend.
//
//	{"kind": "gmm", "weights": [0.3, 0.7], "means": [[0, 0], [4, 1]],
//	 "covariance": "isotropic", "vars": [1.0, 0.25]}
//	{"kind": "gmm", ..., "covariance": "diagonal", "diag": [[1, 2], [0.5, 0.5]]}
//	{"kind": "gmm", ..., "covariance": "full", "covs": [[[1, 0.3], [0.3, 1]], [[0.5, 0], [0, 0.5]]]}
//	{"kind": "empirical", "data": "points.npy"}
//	{"kind": "empirical", "data": "points.npy", "mixture": {"weights": [0.5, 0.5], "scales": [1, 4]}}
//	{"kind": "mlp", "model": "m.safetensors"}
//
// A Gaussian mixture becomes an *ops.GMM (built by ops.NewGMM, which validates weights, variances,
// shapes and positive definiteness); a data set becomes an *ops.Empirical over the (M, d) array of
// the .npy file named by "data" (a relative path is relative to the JSON file's directory), with
// the optional scale mixture of ops.Empirical.WithMixture; a learned network ({"kind": "mlp",
// "model": "m.safetensors"}) is the checkpoint read by nn.Load, evaluated by ops.Backend.MLPScore.
// Kinds of the command's contract that this version does not evaluate as targets (the constraint
// kinds "box", "ball", "polytope") are refused with a message saying so.
//
// Decoding is strict, stricter than encoding/json's DisallowUnknownFields: the object's keys are
// walked token by token, so an unknown key, a key in the wrong case ("Weights") and a key given
// twice are all errors, and every value is checked element by element, so that a null or a string
// inside an array is reported with its index instead of silently becoming 0. Each error is one
// line naming the field (with its index where there is one) and the problem; Load prefixes it with
// the file name.
//
// What may not live here: the evaluation itself (package ops and its backends), samplers (package
// solvers), flag handling and exit statuses (cmd/scorekit).
package target
