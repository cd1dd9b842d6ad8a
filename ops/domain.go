package ops

// DomainKind is the shape of a constraint domain (ALGORITHMS §5.4).
type DomainKind int

const (
	Box      DomainKind = iota + 1 // lo ≤ x ≤ hi coordinate-wise
	Ball                           // ‖x − c‖ ≤ r
	Polytope                       // A x ≤ b
)

// Domain is a validated constraint domain for MetropolisStep.
type Domain struct {
	kind DomainKind
	d    int
}
