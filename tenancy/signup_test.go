package tenancy

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// SignUp refuses bad input with ErrInvalidInput, naming the field, before
// it touches a database.
func TestSignUpRefusesBadInput(t *testing.T) {
	t.Parallel()
	good := func() SignUp {
		slug := "good-org"
		return SignUp{Organization: "Good Org", Slug: &slug, OwnerEmail: "o@x.test", OwnerName: "O", OwnerPassword: "long-enough"}
	}
	str := func(s string) *string { return &s }
	cases := []struct {
		name, field string
		mod         func(*SignUp)
	}{
		{"NUL in org", "organization", func(s *SignUp) { s.Organization = "Bad\x00Org" }},
		{"huge org", "organization", func(s *SignUp) { s.Organization = strings.Repeat("é", 60) }},
		{"empty org", "organization", func(s *SignUp) { s.Organization = "  " }},
		{"bad UTF-8 email", "owner.email", func(s *SignUp) { s.OwnerEmail = "o\xff@x.test" }},
		{"long name", "owner.name", func(s *SignUp) { s.OwnerName = strings.Repeat("n", 101) }},
		{"long password", "owner.password", func(s *SignUp) { s.OwnerPassword = strings.Repeat("p", 129) }},
		{"NUL in slug", "slug", func(s *SignUp) { s.Slug = str("ac\x00me") }},
		{"empty slug", "slug", func(s *SignUp) { s.Slug = str("") }},
		{"reserved slug", "slug", func(s *SignUp) { s.Slug = str("admin") }},
		{"underivable slug", "pass slug", func(s *SignUp) { s.Slug = nil; s.Organization = "日本" }},
		{"bad email", "owner.email", func(s *SignUp) { s.OwnerEmail = "not-an-email" }},
		{"empty owner name", "owner.name", func(s *SignUp) { s.OwnerName = " " }},
		{"short password", "owner.password", func(s *SignUp) { s.OwnerPassword = "short" }},
	}
	p := &Provisioner{} // no registry: nothing may get that far
	for _, c := range cases {
		in := good()
		c.mod(&in)
		_, err := p.SignUp(context.Background(), in)
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: err = %v, want ErrInvalidInput naming %s", c.name, err, c.field)
		}
	}
}
