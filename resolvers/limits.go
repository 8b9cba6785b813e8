package resolvers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/tenantql/tenantql/apierr"
)

// The limits' defaults (see docs/limits.md).
const (
	DefaultMaxTokens             = 5000
	DefaultMaxDepth              = 15
	DefaultMaxAliases            = 30
	DefaultMaxDirectivesPerField = 5
	DefaultMaxComplexity         = 10000
)

// Limits bound an operation before any resolver runs; an operation over
// one is refused with QUERY_TOO_COMPLEX (HTTP 400) and a message naming
// the limit and its value. Zero fields take the Default* values.
type Limits struct {
	// MaxTokens bounds the lexical tokens of the query document (names,
	// punctuation, values, comments), counted by gqlparser's parser.
	MaxTokens int
	// MaxDepth bounds the nesting of fields: a top-level field is at depth
	// 1; fragments add no depth of their own.
	MaxDepth int
	// MaxAliases bounds the aliased fields of one operation, with its
	// fragments expanded.
	MaxAliases int
	// MaxDirectivesPerField bounds the directives on one field, fragment
	// spread, inline fragment, fragment or operation.
	MaxDirectivesPerField int
	// MaxComplexity is the cost budget of one operation: every field costs
	// 1, and a field's selection costs its `first` argument (given or
	// default) times over, so `tenants(first: 100) { edges { node { slug } } }`
	// costs 1 + 100 × 3.
	MaxComplexity int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxTokens, DefaultMaxTokens)
	def(&l.MaxDepth, DefaultMaxDepth)
	def(&l.MaxAliases, DefaultMaxAliases)
	def(&l.MaxDirectivesPerField, DefaultMaxDirectivesPerField)
	def(&l.MaxComplexity, DefaultMaxComplexity)
	return l
}

func init() {
	// A refused operation (too complex, rate-limited) is a request error, as parse and validation
	// errors are: a non-200 status over HTTP, an "error" message over a
	// websocket. gqlgen keeps this registry of codes itself; it is written
	// once here, before anything serves.
	errcode.RegisterErrorType(apierr.QueryTooComplex, errcode.KindProtocol)
	errcode.RegisterErrorType(apierr.RateLimited, errcode.KindProtocol)
}

// limitsExtension enforces Limits in two steps: the document's tokens and
// shape (depth, aliases, directives, size of the expansion) before it is
// validated, and the cost with the request's variables after.
type limitsExtension struct {
	l Limits
	// parsed is the executor's cache of documents that passed validation:
	// such a document already passed the first step.
	parsed graphql.Cache[*ast.QueryDocument]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
	graphql.OperationContextMutator
} = limitsExtension{}

func (limitsExtension) ExtensionName() string                   { return "Limits" }
func (limitsExtension) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters checks the query's tokens and shape. It runs
// after automatic persisted queries filled in the query, before gqlgen
// parses and validates it; a document that does not parse is left to
// gqlgen to report.
func (e limitsExtension) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if p.Query == "" {
		return nil
	}
	if _, ok := e.parsed.Get(ctx, p.Query); ok {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, e.l.MaxTokens)
	if err != nil {
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Message == fmt.Sprintf("exceeded token limit of %d", e.l.MaxTokens) {
			return tooComplex("tokens", e.l.MaxTokens, "query has more than %d tokens, the limit", e.l.MaxTokens)
		}
		return nil
	}
	return e.l.checkShape(doc)
}

// MutateOperationContext checks the cost of the operation to be run, with
// the request's variables.
func (e limitsExtension) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	c := costWalker{vars: oc.Variables, max: e.l.MaxComplexity}
	if cost := c.selectionSet(oc.Operation.SelectionSet); cost > e.l.MaxComplexity {
		return tooComplex("complexity", e.l.MaxComplexity,
			"query complexity is over the budget of %d (each field costs 1, a list field's selection costs its `first` times over)", e.l.MaxComplexity)
	}
	return nil
}

func tooComplex(limit string, maxValue int, format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	err.Extensions = map[string]any{"code": apierr.QueryTooComplex, "limit": limit, "max": maxValue}
	return err
}

// checkShape walks every operation of an unvalidated document, fragments
// expanded (cycles and unknown fragments are skipped: validation reports
// them), and refuses the first limit it finds broken. The walk stops once
// the expansion has more fields, or more fragment uses, than the cost
// budget allows, so fragments that spread each other twice over cannot
// make it run long.
func (l Limits) checkShape(doc *ast.QueryDocument) *gqlerror.Error {
	for _, op := range doc.Operations {
		w := shapeWalker{doc: doc, l: l, active: map[string]bool{}}
		w.directives(op.Directives, "operation")
		w.selectionSet(op.SelectionSet, 1)
		if w.err != nil {
			return w.err
		}
	}
	return nil
}

type shapeWalker struct {
	doc       *ast.QueryDocument
	l         Limits
	aliases   int
	fields    int
	fragments int
	active    map[string]bool // fragments being expanded
	err       *gqlerror.Error
}

func (w *shapeWalker) selectionSet(ss ast.SelectionSet, depth int) {
	for _, sel := range ss {
		if w.err != nil {
			return
		}
		switch s := sel.(type) {
		case *ast.Field:
			w.fields++
			switch {
			case w.fields > w.l.MaxComplexity:
				w.err = tooComplex("complexity", w.l.MaxComplexity,
					"query complexity is over the budget of %d: it selects more fields than that", w.l.MaxComplexity)
			case depth > w.l.MaxDepth:
				w.err = tooComplex("depth", w.l.MaxDepth,
					"query is deeper than the limit of %d levels (field %q is at depth %d)", w.l.MaxDepth, s.Name, depth)
			case s.Alias != "" && s.Alias != s.Name && w.aliases+1 > w.l.MaxAliases:
				w.err = tooComplex("aliases", w.l.MaxAliases, "query has more than %d aliases, the limit", w.l.MaxAliases)
			default:
				if s.Alias != "" && s.Alias != s.Name {
					w.aliases++
				}
				w.directives(s.Directives, fmt.Sprintf("field %q", s.Name))
				w.selectionSet(s.SelectionSet, depth+1)
			}
		case *ast.InlineFragment:
			if w.fragment() {
				w.directives(s.Directives, "an inline fragment")
				w.selectionSet(s.SelectionSet, depth)
			}
		case *ast.FragmentSpread:
			if !w.fragment() {
				return
			}
			w.directives(s.Directives, fmt.Sprintf("spread of %q", s.Name))
			def := w.doc.Fragments.ForName(s.Name)
			if def == nil || w.active[s.Name] {
				continue
			}
			w.directives(def.Directives, fmt.Sprintf("fragment %q", s.Name))
			w.active[s.Name] = true
			w.selectionSet(def.SelectionSet, depth)
			delete(w.active, s.Name)
		}
	}
}

// fragment counts one use of a fragment; false (with the error set) past
// the budget.
func (w *shapeWalker) fragment() bool {
	w.fragments++
	if w.fragments > w.l.MaxComplexity {
		w.err = tooComplex("complexity", w.l.MaxComplexity,
			"query complexity is over the budget of %d: its fragments expand more than that", w.l.MaxComplexity)
		return false
	}
	return true
}

func (w *shapeWalker) directives(d ast.DirectiveList, where string) {
	if w.err == nil && len(d) > w.l.MaxDirectivesPerField {
		w.err = tooComplex("directives", w.l.MaxDirectivesPerField,
			"%s has %d directives, over the limit of %d", where, len(d), w.l.MaxDirectivesPerField)
	}
}

// costWalker computes the cost of a validated operation, saturating just
// above max so that no sum or product overflows.
type costWalker struct {
	vars map[string]any
	max  int
}

func (c *costWalker) selectionSet(ss ast.SelectionSet) int {
	total := 0
	for _, sel := range ss {
		if total > c.max {
			return total
		}
		switch s := sel.(type) {
		case *ast.Field:
			cost := 1
			if len(s.SelectionSet) > 0 {
				cost = c.add(1, c.mul(listSize(s, c.vars), c.selectionSet(s.SelectionSet)))
			}
			total = c.add(total, cost)
		case *ast.InlineFragment:
			total = c.add(total, c.selectionSet(s.SelectionSet))
		case *ast.FragmentSpread:
			if s.Definition != nil {
				total = c.add(total, c.selectionSet(s.Definition.SelectionSet))
			}
		}
	}
	return total
}

func (c *costWalker) add(a, b int) int { return min(a+b, c.max+1) } // both are at most max+1

func (c *costWalker) mul(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	if a > (c.max+1)/b+1 {
		return c.max + 1
	}
	return min(a*b, c.max+1)
}

// listSize is the multiplier of a field's selection: its `first` argument
// when it has one (given, from a variable or its default) and it is
// positive, else 1.
func listSize(f *ast.Field, vars map[string]any) int {
	if f.Definition == nil || f.Definition.Arguments.ForName("first") == nil {
		return 1
	}
	var n float64
	switch v := f.ArgumentMap(vars)["first"].(type) {
	case int:
		n = float64(v)
	case int32:
		n = float64(v)
	case int64:
		n = float64(v)
	case float64:
		n = v
	case json.Number:
		n, _ = v.Float64()
	}
	if n < 1 {
		return 1
	}
	return int(min(n, math.MaxInt32))
}
