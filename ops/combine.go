package ops

import "github.com/scorekit/scorekit/tensor"

// Term is one term C·T of Backend.Combine.
type Term struct {
	T *tensor.Tensor
	C float64
}

// MaxTerms is the most terms one Combine takes (a third-order multistep update needs five).
const MaxTerms = 6
