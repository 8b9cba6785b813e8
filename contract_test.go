package main

import (
	"os"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/tenantql/tenantql/graph"
)

// TestServedSchemaKeepsTheContract fails when the executable schema stops
// being a superset of testdata/contract.graphqls (a copy of
// ../shared/contract/schema.graphqls): every type, field, argument (with
// its type and default) and enum value must still be there, alike.
func TestServedSchemaKeepsTheContract(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("testdata/contract.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	contract, gqlErr := gqlparser.LoadSchema(&ast.Source{Name: "contract.graphqls", Input: string(src)})
	if gqlErr != nil {
		t.Fatal(gqlErr)
	}
	served := graph.NewExecutableSchema(graph.Config{}).Schema()
	for _, problem := range schemaGaps(contract, served) {
		t.Error(problem)
	}
}

// schemaGaps lists what contract has that served lacks or types differently.
func schemaGaps(contract, served *ast.Schema) []string {
	var gaps []string
	for name, want := range contract.Types {
		if want.BuiltIn {
			continue
		}
		got := served.Types[name]
		if got == nil {
			gaps = append(gaps, "missing type "+name)
			continue
		}
		if got.Kind != want.Kind {
			gaps = append(gaps, "type "+name+" is "+string(got.Kind)+", contract says "+string(want.Kind))
			continue
		}
		for _, ev := range want.EnumValues {
			if got.EnumValues.ForName(ev.Name) == nil {
				gaps = append(gaps, "missing enum value "+name+"."+ev.Name)
			}
		}
		for _, wf := range want.Fields {
			gf := got.Fields.ForName(wf.Name)
			if gf == nil {
				gaps = append(gaps, "missing field "+name+"."+wf.Name)
				continue
			}
			if gf.Type.String() != wf.Type.String() {
				gaps = append(gaps, "field "+name+"."+wf.Name+" is "+gf.Type.String()+", contract says "+wf.Type.String())
			}
			if !sameDefault(gf.DefaultValue, wf.DefaultValue) {
				gaps = append(gaps, "field "+name+"."+wf.Name+" has another default value")
			}
			for _, wa := range wf.Arguments {
				ga := gf.Arguments.ForName(wa.Name)
				switch {
				case ga == nil:
					gaps = append(gaps, "missing argument "+name+"."+wf.Name+"("+wa.Name+")")
				case ga.Type.String() != wa.Type.String():
					gaps = append(gaps, "argument "+name+"."+wf.Name+"("+wa.Name+") is "+ga.Type.String()+", contract says "+wa.Type.String())
				case !sameDefault(ga.DefaultValue, wa.DefaultValue):
					gaps = append(gaps, "argument "+name+"."+wf.Name+"("+wa.Name+") has another default value")
				}
			}
			// arguments added beyond the contract must be optional
			for _, ga := range gf.Arguments {
				if wf.Arguments.ForName(ga.Name) == nil && ga.Type.NonNull && ga.DefaultValue == nil {
					gaps = append(gaps, "new required argument "+name+"."+wf.Name+"("+ga.Name+") breaks callers")
				}
			}
		}
	}
	return gaps
}

func sameDefault(a, b *ast.Value) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.String() == b.String()
}

func TestSchemaGapsFindsBreaks(t *testing.T) {
	t.Parallel()
	load := func(s string) *ast.Schema {
		schema, err := gqlparser.LoadSchema(&ast.Source{Input: s})
		if err != nil {
			t.Fatal(err)
		}
		return schema
	}
	contract := load(`type Query { a(x: Int = 1): String!  b: [Int!]! } enum E { X Y } type T { e: E }`)
	for _, c := range []struct {
		served string
		gaps   int
	}{
		{`type Query { a(x: Int = 1, y: Int): String! b: [Int!]! c: Int } enum E { X Y Z } type T { e: E }`, 0},
		{`type Query { a(x: Int = 1): String b: [Int!]! } enum E { X Y } type T { e: E }`, 1},
		{`type Query { a(x: Int = 2): String! b: [Int!]! } enum E { X Y } type T { e: E }`, 1},
		{`type Query { a: String! b: [Int!]! } enum E { X } type T { e: E }`, 2},
		{`type Query { a(x: Int = 1, y: Int!): String! b: [Int!]! } enum E { X Y }`, 2},
	} {
		if got := schemaGaps(contract, load(c.served)); len(got) != c.gaps {
			t.Errorf("served %q: gaps %v, want %d", c.served, got, c.gaps)
		}
	}
}
