package cuda

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/scorekit/scorekit/kernels"
	"github.com/scorekit/scorekit/tensor"
)

// Kernel arguments. Every launch passes one struct whose exported fields are the kernel's
// parameters in order, named after them (case and underscores ignored: PStep is p_step); an array
// field [N]X stands for the parameters name0 … name{N−1}. packArgs checks the struct against the
// kernel's entry in the generated table (kernels.Entries, derived from the source and the PTX):
// the same names in the same order, a *tensor.Tensor for every pointer (nil for a null pointer;
// float data in an F32 tensor, double data in an F64 tensor, 4- or 8-byte words in F32 or F64),
// int64 for long long, uint64 for unsigned long long, float64 for double. A launcher that passes
// its arguments in the wrong order, misses one or swaps a dtype fails with an error naming the
// parameter instead of launching a kernel that reads garbage. TestArgsStructsMatchEntries checks
// every struct against every entry it serves without a GPU.

// Argument structs, one per parameter list (kernels/<module>.cu has the meaning of each).
type (
	// chains_<method>_<variant>_<dt> (chains.cu CHAINS_PARAMS)
	chainsArgs struct {
		X, V, LogP, Score, Accepted, HS, Center, Trace, Consts *tensor.Tensor
		N, D, K, Cov, Tile, Steps, Thin, Group                 int64
		H, Beta, Gamma, FA, FV, E, CV, CX, CXG, L11, L21, L22  float64
		Seed, First, Stride, PStep, PAccept, PULD, Chain0      uint64
	}
	// combine_<dt> (diffusion.cu)
	combineArgs struct {
		Dst        *tensor.Tensor
		T          [combineTerms]*tensor.Tensor
		C          [combineTerms]float64
		Terms      int64
		Noise      float64
		N, D       int64
		Seed, Site uint64
		Chain0     uint64
	}
	// metropolis_box_<dt> (diffusion.cu)
	metropolisBoxArgs struct {
		X, Prop, Rejected *tensor.Tensor
		N, D, Group       int64
		Lo, Hi            *tensor.Tensor
	}
	// metropolis_ball_<dt> (diffusion.cu)
	metropolisBallArgs struct {
		X, Prop, Rejected *tensor.Tensor
		N, D, Group       int64
		Center            *tensor.Tensor
		Radius            float64
	}
	// metropolis_polytope_<dt> (diffusion.cu)
	metropolisPolytopeArgs struct {
		X, Prop, Rejected *tensor.Tensor
		N, D, Group       int64
		A, B              *tensor.Tensor
		M                 int64
	}
	// empirical_score_<dt> (empirical.cu)
	empiricalScoreArgs struct {
		X, Levels                  *tensor.Tensor
		Level                      float64
		Kind                       int64
		AScale, SVar               float64
		Data                       *tensor.Tensor
		Count, TilesPerSplit, N, D int64
		Mix                        *tensor.Tensor
		NQ                         int64
		LogM, AMax                 float64
		SlotY, SlotZ               *tensor.Tensor
		SlotStride                 int64
		State                      *tensor.Tensor
		Flags                      int64
		OutLogP, OutScore, OutDen  *tensor.Tensor
	}
	// empirical_finalize_<dt> (empirical.cu)
	empiricalFinalizeArgs struct {
		Levels                    *tensor.Tensor
		Level                     float64
		Kind                      int64
		AScale, SVar              float64
		N, D                      int64
		LogM, AMax                float64
		SlotY, SlotZ              *tensor.Tensor
		SlotStride                int64
		State                     *tensor.Tensor
		Splits                    int64
		OutLogP, OutScore, OutDen *tensor.Tensor
	}
	// fft_r<R>_<dt> (fft.cu)
	fftArgs struct {
		Dst, Src, TW        *tensor.Tensor
		Batch, N, NS, Flags int64
		Scale               float64
		XOut                *tensor.Tensor // nil: the complex output dst
		NOut, Paths         int64
	}
	// fgn_spectrum_<dt> (fgn.cu)
	fgnSpectrumArgs struct {
		Buf, W             *tensor.Tensor
		Paths, NE          int64
		Seed, Site, Chain0 uint64
	}
	// fgn_r<R>_f32 (fgn.cu): the first FFT pass generating its input
	fgnFirstPassArgs struct {
		Dst, W, TW         *tensor.Tensor
		Paths, NE          int64
		Seed, Site, Chain0 uint64
	}
	// fgn_cumsum_<dt> (fgn.cu)
	fgnCumsumArgs struct {
		Dst      *tensor.Tensor
		Paths, N int64
	}
	// fgn_increments_<dt>, fgn_path_<dt> (fgn.cu)
	fgnExtractArgs struct {
		Dst, Buf    *tensor.Tensor
		Paths, N, M int64
		Scale       float64
	}
	// gmm_prep_<dt> (gmm.cu)
	gmmPrepArgs struct {
		Consts, Params *tensor.Tensor
		D, K, Cov      int64
		A, S           float64
	}
	// gmm_score_<variant>[lv]_<dt> (gmm.cu GMM_SCORE_PARAMS)
	gmmScoreArgs struct {
		LogP, Score, Den, Resp, X *tensor.Tensor
		N, D, K, Cov              int64
		Params, Consts            *tensor.Tensor
		Noise                     int64
		Levels                    *tensor.Tensor
		A, S                      float64
		Tile                      int64
	}
	// step_<dt> (langevin.cu)
	stepArgs struct {
		Dst, X, Score, H   *tensor.Tensor
		N, D               int64
		Alpha, Beta, Gamma float64
		Seed, Site, Chain0 uint64
	}
	// mala_accept_<dt> (langevin.cu)
	malaAcceptArgs struct {
		X, LogP, Score, Y, LogPY, ScoreY, HS *tensor.Tensor
		H                                    float64
		Accepted                             *tensor.Tensor
		N, D, Group                          int64
		Seed, Site, Chain0                   uint64
	}
	// uld_step_<dt> (langevin.cu)
	uldStepArgs struct {
		X, V, Score                   *tensor.Tensor
		N, D                          int64
		E, CV, CX, CXG, L11, L21, L22 float64
		Seed, Site, Chain0            uint64
	}
	// gaussian_factor_<dt> (langevin.cu)
	gaussianFactorArgs struct {
		LogP, Score, X, Center *tensor.Tensor
		N, D, Group            int64
		A, Var                 float64
	}
	// mafbm_<dt> (noise.cu)
	mafbmArgs struct {
		Dst, Y, Table              *tensor.Tensor
		Paths, Steps, K            int64
		Seed, Site, Stride, Chain0 uint64
	}
	// stable_<dt> (noise.cu)
	stableArgs struct {
		Dst                                        *tensor.Tensor
		Rows, Dim                                  int64
		Alpha, Beta, Shift, Scale, InvAlpha, Clamp float64
		Counter                                    *tensor.Tensor
		Seed, Site, Chain0                         uint64
	}
	// stable_isotropic_<dt> (noise.cu)
	stableIsotropicArgs struct {
		Dst                *tensor.Tensor
		Rows, Dim          int64
		Alpha, InvAlpha    float64
		Degenerate         int64
		Clamp              float64
		Counter            *tensor.Tensor
		Seed, Site, Chain0 uint64
	}
	// brownian_<dt> (noise.cu)
	brownianArgs struct {
		Dst                *tensor.Tensor
		Paths, N, Tau      int64
		SH                 float64
		Increments         int64
		Seed, Site, Chain0 uint64
	}
	// binterval_<dt> (binterval.cu)
	bintervalArgs struct {
		Dst, S, T                  *tensor.Tensor
		Paths, Q, SShared, TShared int64
		Horizon, Scale, SqrtT      float64
		Depth                      int64
		Bad                        *tensor.Tensor
		Seed, Site, Chain0         uint64
	}
	// revheun_adjoint_<dt> (revheun.cu)
	revheunAdjointArgs struct {
		Y, Z, AY, AZ, Grad, DW *tensor.Tensor
		N, D, Q                int64
		A, B, C, E             float64
		H                      float64
	}
	// gmm_scale_mixture_<dt> (scalemix.cu)
	gmmScaleMixtureArgs struct {
		Dst, X, Means, Lambda, LogW, QLogW, QMult *tensor.Tensor
		N, D, K, Q, Diag                          int64
		V                                         float64
	}
	// augmented_m<M> (augmented.cu)
	augmentedArgs struct {
		Dst, X, Y, Den, U, Coef *tensor.Tensor
		N, D, R, Mask           int64
		Q                       float64
		Seed, Site, Chain0      uint64
	}
	// lmheun_<dt> (lmheun.cu)
	lmheunArgs struct {
		Y, Z, Work, DW               *tensor.Tensor
		Means, Logits, Vars, LogNorm *tensor.Tensor
		N, D, K, Q                   int64
		H                            float64
		Inverse                      int64
	}
	// lmheun_adjoint_<dt> (lmheun.cu)
	lmheunAdjointArgs struct {
		Y, Z, AY, AZ, Grad, Work, DW *tensor.Tensor
		Means, Logits, Vars, LogNorm *tensor.Tensor
		N, D, K, Q                   int64
		H                            float64
	}
	// revheun_<dt> (revheun.cu)
	revheunArgs struct {
		Y, Z, DW   *tensor.Tensor
		N, D, Q    int64
		A, B, C, E float64
		H          float64
		Inverse    int64
	}
	// mlp_score_<dt> (mlp.cu)
	mlpScoreArgs struct {
		Score, Den, X                            *tensor.Tensor
		N, D, Width, Depth, BlockLayers, Fourier int64
		Params                                   *tensor.Tensor
		SigmaData, Branch, OutMult               float64
		Noise                                    int64
		Levels                                   *tensor.Tensor
		A, S                                     float64
	}
	// philox_bits_f32, uniform_<dt>, normal_<dt> (random.cu)
	fillArgs struct {
		Dst                *tensor.Tensor
		Chains, Dim        int64
		Seed, Site, Chain0 uint64
	}
	// philox_kat (random.cu)
	philoxKATArgs struct {
		Out, In *tensor.Tensor
		N       int64
	}
)

// combineTerms is the number of term slots of the combine kernel (ops.MaxTerms).
const combineTerms = 6

// argsFor lists which struct serves which entries (by entry name); TestArgsStructsMatchEntries
// requires every entry of every module to match exactly one pattern.
var argsFor = []struct {
	pattern *regexp.Regexp
	args    any
}{
	{regexp.MustCompile(`^chains_(ula|mala|uld)_(row2|row4|row8|row16|warp1|warp2|warp4|warp8)_f(32|64)$`), chainsArgs{}},
	{regexp.MustCompile(`^combine_f(32|64)$`), combineArgs{}},
	{regexp.MustCompile(`^metropolis_box_f(32|64)$`), metropolisBoxArgs{}},
	{regexp.MustCompile(`^metropolis_ball_f(32|64)$`), metropolisBallArgs{}},
	{regexp.MustCompile(`^metropolis_polytope_f(32|64)$`), metropolisPolytopeArgs{}},
	{regexp.MustCompile(`^empirical_score_(f32|f64|reg_f32)$`), empiricalScoreArgs{}},
	{regexp.MustCompile(`^empirical_finalize_f(32|64)$`), empiricalFinalizeArgs{}},
	{regexp.MustCompile(`^fft_r[0-9]+_f(32|64)$`), fftArgs{}},
	{regexp.MustCompile(`^fgn_spectrum_f(32|64)$`), fgnSpectrumArgs{}},
	{regexp.MustCompile(`^fgn_r(128|256|512|1024|2048)_f32$`), fgnFirstPassArgs{}},
	{regexp.MustCompile(`^fgn_(increments|path)_f(32|64)$`), fgnExtractArgs{}},
	{regexp.MustCompile(`^fgn_cumsum_f32$`), fgnCumsumArgs{}},
	{regexp.MustCompile(`^gmm_prep_f(32|64)$`), gmmPrepArgs{}},
	{regexp.MustCompile(`^gmm_score_(row4|row8|row16|rowfull4|rowfull8|warp1|warp2|warp4|warp8|warp16|wide|full)(lv)?_f(32|64)$`), gmmScoreArgs{}},
	{regexp.MustCompile(`^step_f(32|64)$`), stepArgs{}},
	{regexp.MustCompile(`^mala_accept_f(32|64)$`), malaAcceptArgs{}},
	{regexp.MustCompile(`^uld_step_f(32|64)$`), uldStepArgs{}},
	{regexp.MustCompile(`^gaussian_factor_f(32|64)$`), gaussianFactorArgs{}},
	{regexp.MustCompile(`^mafbm_f(32|64)$`), mafbmArgs{}},
	{regexp.MustCompile(`^stable_f(32|64)$`), stableArgs{}},
	{regexp.MustCompile(`^stable_isotropic_f(32|64)$`), stableIsotropicArgs{}},
	{regexp.MustCompile(`^brownian_f(32|64)$`), brownianArgs{}},
	{regexp.MustCompile(`^binterval_f(32|64)$`), bintervalArgs{}},
	{regexp.MustCompile(`^revheun_f(32|64)$`), revheunArgs{}},
	{regexp.MustCompile(`^augmented_m[1-6]$`), augmentedArgs{}},
	{regexp.MustCompile(`^gmm_scale_mixture_f(32|64)$`), gmmScaleMixtureArgs{}},
	{regexp.MustCompile(`^revheun_adjoint_f(32|64)$`), revheunAdjointArgs{}},
	{regexp.MustCompile(`^lmheun_f(32|64)$`), lmheunArgs{}},
	{regexp.MustCompile(`^lmheun_adjoint_f(32|64)$`), lmheunAdjointArgs{}},
	{regexp.MustCompile(`^mlp_score_f(32|64)$`), mlpScoreArgs{}},
	{regexp.MustCompile(`^(philox_bits_f32|uniform_f(32|64)|normal_f(32|64))$`), fillArgs{}},
	{regexp.MustCompile(`^philox_kat$`), philoxKATArgs{}},
}

var tensorType = reflect.TypeOf((*tensor.Tensor)(nil))

// argSlot is one kernel parameter as the struct provides it: field index (and array index, or −1).
type argSlot struct {
	field, elem int
	name        string
	kind        reflect.Type // *tensor.Tensor, int64, uint64 or float64
}

// argLayout flattens struct type t into its parameter slots.
func argLayout(t reflect.Type) ([]argSlot, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("kernel arguments must be a struct, not %v", t)
	}
	var slots []argSlot
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		ft := f.Type
		n := -1
		if ft.Kind() == reflect.Array {
			n = ft.Len()
			ft = ft.Elem()
		}
		switch ft {
		case tensorType, reflect.TypeOf(int64(0)), reflect.TypeOf(uint64(0)), reflect.TypeOf(float64(0)):
		default:
			return nil, fmt.Errorf("%v.%s has type %v: kernel arguments are *tensor.Tensor, int64, uint64 or float64",
				t, f.Name, f.Type)
		}
		if n < 0 {
			slots = append(slots, argSlot{field: i, elem: -1, name: f.Name, kind: ft})
			continue
		}
		for j := 0; j < n; j++ {
			slots = append(slots, argSlot{field: i, elem: j, name: fmt.Sprintf("%s%d", f.Name, j), kind: ft})
		}
	}
	return slots, nil
}

// normName is a parameter or field name without case and underscores.
func normName(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }

// pointeeDType is the tensor dtype a pointer parameter's data needs: float → F32, double → F64;
// the complex pairs of the FFT likewise; 4-byte words F32, 8-byte words F64.
func pointeeDType(p kernels.Param) (tensor.DType, error) {
	switch e := p.Elem(); {
	case e == "float" || strings.HasSuffix(e, "<float>") || e == "unsigned int" || e == "int":
		return tensor.F32, nil
	case e == "double" || strings.HasSuffix(e, "<double>") || e == "unsigned long long" || e == "long long":
		return tensor.F64, nil
	}
	return 0, fmt.Errorf("parameter %s: no tensor dtype holds %q", p.Name, p.Type)
}

// checkLayout compares the slots of an argument struct with the entry's parameters.
func checkLayout(e kernels.Entry, t reflect.Type, slots []argSlot) error {
	if len(slots) != len(e.Params) {
		return fmt.Errorf("kernel %s takes %d parameters, %v provides %d", e.Name, len(e.Params), t, len(slots))
	}
	for i, p := range e.Params {
		s := slots[i]
		if normName(s.name) != normName(p.Name) {
			return fmt.Errorf("kernel %s parameter %d is %s %s, %v provides %s there", e.Name, i, p.Type, p.Name, t, s.name)
		}
		var want reflect.Type
		switch {
		case p.Pointer():
			want = tensorType
			if _, err := pointeeDType(p); err != nil {
				return fmt.Errorf("kernel %s: %w", e.Name, err)
			}
		case p.Type == "long long":
			want = reflect.TypeOf(int64(0))
		case p.Type == "unsigned long long":
			want = reflect.TypeOf(uint64(0))
		case p.Type == "double":
			want = reflect.TypeOf(float64(0))
		default:
			return fmt.Errorf("kernel %s parameter %s has type %s, which no argument type passes", e.Name, p.Name, p.Type)
		}
		if s.kind != want {
			return fmt.Errorf("kernel %s parameter %s is %s: %v.%s is %v, want %v", e.Name, p.Name, p.Type, t, s.name, s.kind, want)
		}
	}
	return nil
}

// layouts caches checked layouts per (struct type, entry).
var layouts sync.Map // layoutKey → []argSlot

type layoutKey struct {
	t      reflect.Type
	module string
	name   string
}

// packArgs checks args (an argument struct) against entry e and returns the launch arguments in
// parameter order: tensors (null pointers as uintptr(0)), int64, uint64 and float64.
func packArgs(e kernels.Entry, args any) ([]any, error) {
	v := reflect.ValueOf(args)
	t := v.Type()
	key := layoutKey{t, e.Module, e.Name}
	var slots []argSlot
	if c, ok := layouts.Load(key); ok {
		slots = c.([]argSlot)
	} else {
		var err error
		if slots, err = argLayout(t); err != nil {
			return nil, err
		}
		if err := checkLayout(e, t, slots); err != nil {
			return nil, err
		}
		layouts.Store(key, slots)
	}
	out := make([]any, len(slots))
	for i, s := range slots {
		f := v.Field(s.field)
		if s.elem >= 0 {
			f = f.Index(s.elem)
		}
		switch s.kind {
		case tensorType:
			tn := f.Interface().(*tensor.Tensor)
			if tn == nil {
				out[i] = uintptr(0)
				continue
			}
			want, _ := pointeeDType(e.Params[i])
			if tn.DType() != want {
				return nil, fmt.Errorf("kernel %s parameter %s (%s) needs %v data, the argument is a %v tensor",
					e.Name, e.Params[i].Name, e.Params[i].Type, want, tn.DType())
			}
			out[i] = tn
		case reflect.TypeOf(float64(0)):
			out[i] = f.Float()
		case reflect.TypeOf(int64(0)):
			out[i] = f.Int()
		default:
			out[i] = f.Uint()
		}
	}
	return out, nil
}

// entryOf returns the table entry of a loaded kernel.
func entryOf(module, name string) (kernels.Entry, error) {
	e, ok := kernels.LookupEntry(module, name)
	if !ok {
		return kernels.Entry{}, fmt.Errorf("kernel %s of module %s is not in the entry table (run make ptx)", name, module)
	}
	return e, nil
}
