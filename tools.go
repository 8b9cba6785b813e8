//go:build tools

// Package main pins the code generators tenantql uses, so that go.mod
// records their versions and `go generate` runs the pinned ones.
package main

import (
	_ "github.com/99designs/gqlgen"
)
