package tenancy

import (
	"context"
	"strings"
	"unicode/utf8"
)

// SignUp is what a new organization gives: itself and its first user.
type SignUp struct {
	Organization string  // display name, see ValidateName; at most 100 bytes
	Slug         *string // subdomain label, see ValidateSlug; nil derives it from Organization
	OwnerEmail   string  // at most 254 bytes
	OwnerName    string  // at most 100 bytes
	// OwnerPassword is at least 8 characters and at most 128 bytes; only
	// its hash is kept.
	OwnerPassword string
	SeedDemo      bool // fill the new database with demo projects and issues
	// Server pins the tenant to a database server; "" lets placement choose.
	Server string
}

// PasswordHasher turns the owner's password into the hash given to the
// owner user (auth's password hashing).
type PasswordHasher func(password string) (string, error)

// SignUp validates s, registers a PROVISIONING tenant with the owner's
// password sealed and wakes the workers: the tenant's database is built
// in the background (follow it with Registry.SubscribeStatus), and the
// password is hashed there, beside the database's steps, not before the
// caller gets its answer. Values are trimmed of surrounding spaces except
// the password. Returns ErrInvalidInput, whose message names the field,
// and ErrSlugTaken (the unique index decides between concurrent sign-ups).
func (p *Provisioner) SignUp(ctx context.Context, s SignUp) (*Tenant, error) {
	org := strings.TrimSpace(s.Organization)
	email := strings.TrimSpace(s.OwnerEmail)
	name := strings.TrimSpace(s.OwnerName)
	for _, f := range []struct {
		field, v string
		max      int
	}{
		{"organization", s.Organization, 100}, {"owner.email", s.OwnerEmail, 254},
		{"owner.name", s.OwnerName, 100}, {"owner.password", s.OwnerPassword, 128},
	} {
		if err := checkText(f.field, f.v, f.max); err != nil {
			return nil, err
		}
	}
	if err := ValidateName(org); err != nil {
		return nil, err
	}
	var slug string
	if s.Slug != nil {
		if err := checkText("slug", *s.Slug, 40); err != nil {
			return nil, err
		}
		slug = *s.Slug
	} else {
		slug = SlugFromName(org)
		if ValidateSlug(slug) != nil {
			return nil, invalid("cannot derive a valid slug from %q: pass slug", org)
		}
	}
	if err := ValidateSlug(slug); err != nil {
		return nil, err
	}
	if !validEmail(email) {
		return nil, invalid("owner.email must be an email address")
	}
	if name == "" {
		return nil, invalid("owner.name must not be empty")
	}
	if utf8.RuneCountInString(s.OwnerPassword) < 8 {
		return nil, invalid("owner.password must be at least 8 characters")
	}
	t, err := p.reg.Create(ctx, NewTenant{
		Slug: slug, Name: org, OwnerEmail: email, OwnerName: name, OwnerPassword: s.OwnerPassword,
		SeedDemo: s.SeedDemo, Server: s.Server,
	})
	if err != nil {
		return nil, err
	}
	p.Kick()
	return t, nil
}

// checkText refuses NUL bytes, invalid UTF-8 and over-long values.
func checkText(field, v string, maxBytes int) error {
	switch {
	case strings.ContainsRune(v, 0):
		return invalid("%s must not contain NUL bytes", field)
	case !utf8.ValidString(v):
		return invalid("%s must be valid UTF-8", field)
	case len(v) > maxBytes:
		return invalid("%s must be at most %d bytes", field, maxBytes)
	}
	return nil
}

// validEmail is a deliberately plain check: one @, a dot in the domain, no
// spaces; the owner proves the address by using it.
func validEmail(e string) bool {
	local, domain, ok := strings.Cut(e, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.ContainsAny(e, " \t\r\n<>,;\"") &&
		!strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".") && !strings.Contains(domain, "@")
}
