package store_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantql/tenantql/store"
)

func TestCreateUser(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)

	u, err := e.s.CreateUser(ctx, store.NewUser{
		Email: "  Ada.Lovelace@Example.com ", Name: " Ada Lovelace ", Role: store.RoleAdmin, PasswordHash: "$argon2id$x"})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == uuid.Nil || u.Email != "Ada.Lovelace@Example.com" || u.Name != "Ada Lovelace" ||
		u.Role != store.RoleAdmin || u.PasswordHash != "$argon2id$x" {
		t.Fatalf("created %+v", u)
	}
	isUTC(t, "user", u.CreatedAt)

	byID, err := e.s.UserByID(ctx, u.ID)
	if err != nil || byID != u {
		t.Fatalf("UserByID = %+v, %v; want %+v", byID, err, u)
	}
	for _, email := range []string{"Ada.Lovelace@Example.com", "ada.lovelace@example.com", " ADA.LOVELACE@EXAMPLE.COM\t"} {
		got, err := e.s.UserByEmail(ctx, email)
		if err != nil || got != u {
			t.Fatalf("UserByEmail(%q) = %+v, %v; want %+v", email, got, err, u)
		}
	}

	_, err = e.s.CreateUser(ctx, store.NewUser{
		Email: "ADA.lovelace@example.COM", Name: "Other", Role: store.RoleMember, PasswordHash: "h"})
	wantErr(t, err, store.ErrConflict)
	if n := e.count(t, "users"); n != 1 {
		t.Fatalf("%d users, want 1", n)
	}
}

func TestCreateUserValidation(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	ok := store.NewUser{Email: "x@example.com", Name: "X", Role: store.RoleMember, PasswordHash: "h"}
	tests := []struct {
		name   string
		change func(*store.NewUser)
	}{
		{"empty email", func(n *store.NewUser) { n.Email = "" }},
		{"no at", func(n *store.NewUser) { n.Email = "example.com" }},
		{"no domain dot", func(n *store.NewUser) { n.Email = "x@localhost" }},
		{"two ats", func(n *store.NewUser) { n.Email = "x@y@example.com" }},
		{"space inside", func(n *store.NewUser) { n.Email = "x y@example.com" }},
		{"NUL email", func(n *store.NewUser) { n.Email = "x\x00@example.com" }},
		{"long email", func(n *store.NewUser) { n.Email = longEmail + "g" }},
		{"long local part", func(n *store.NewUser) { n.Email = strings.Repeat("a", 65) + "@example.com" }},
		{"long label", func(n *store.NewUser) { n.Email = "a@" + strings.Repeat("b", 64) + ".com" }},
		{"empty label", func(n *store.NewUser) { n.Email = "a@example..com" }},
		{"dot first", func(n *store.NewUser) { n.Email = ".a@example.com" }},
		{"angle brackets", func(n *store.NewUser) { n.Email = "<a@example.com>" }},
		{"empty name", func(n *store.NewUser) { n.Name = "" }},
		{"blank name", func(n *store.NewUser) { n.Name = "   " }},
		{"long name", func(n *store.NewUser) { n.Name = strings.Repeat("n", 101) }},
		{"long multibyte name", func(n *store.NewUser) { n.Name = strings.Repeat("é", 51) }},
		{"NUL name", func(n *store.NewUser) { n.Name = "a\x00b" }},
		{"newline name", func(n *store.NewUser) { n.Name = "a\nb" }},
		{"invalid UTF-8 name", func(n *store.NewUser) { n.Name = "a\xffb" }},
		{"empty role", func(n *store.NewUser) { n.Role = "" }},
		{"unknown role", func(n *store.NewUser) { n.Role = "owner" }},
		{"empty hash", func(n *store.NewUser) { n.PasswordHash = "" }},
		{"NUL hash", func(n *store.NewUser) { n.PasswordHash = "h\x00" }},
	}
	for _, tt := range tests {
		nu := ok
		tt.change(&nu)
		_, err := e.s.CreateUser(ctx, nu)
		if !strings.HasPrefix(errString(err), "invalid input: ") {
			t.Errorf("%s: error = %v, want an ErrInvalidInput", tt.name, err)
		}
		wantErr(t, err, store.ErrInvalidInput)
	}
	if n := e.count(t, "users"); n != 0 {
		t.Fatalf("%d users, want 0", n)
	}
	// the limits themselves are accepted
	nu := ok
	nu.Name = strings.Repeat("n", 100)
	nu.Email = longEmail
	if _, err := e.s.CreateUser(ctx, nu); err != nil {
		t.Fatalf("254-byte email, 100-byte name: %v", err)
	}
}

// longEmail is 254 bytes, the longest valid email.
var longEmail = strings.Repeat("a", 64) + "@" + strings.Repeat(strings.Repeat("b", 60)+".", 3) + "abcdef"

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestUserLookupsNotFound(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	e.user(t, "someone")
	_, err := e.s.UserByID(ctx, uuid.New())
	wantErr(t, err, store.ErrNotFound)
	for _, email := range []string{"nobody@example.com", "", "not an email", "a\x00@example.com", "\xff@example.com"} {
		_, err := e.s.UserByEmail(ctx, email)
		wantErr(t, err, store.ErrNotFound)
	}
}

func TestUsersByIDs(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	a, b, c := e.user(t, "a"), e.user(t, "b"), e.user(t, "c")
	unknown := uuid.New()
	got, err := e.s.UsersByIDs(ctx, []uuid.UUID{a.ID, c.ID, unknown, a.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[a.ID] != a || got[c.ID] != c {
		t.Fatalf("UsersByIDs = %+v", got)
	}
	if _, ok := got[b.ID]; ok {
		t.Fatal("b was not asked for")
	}
	got, err = e.s.UsersByIDs(ctx, nil)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("UsersByIDs(nil) = %v, %v", got, err)
	}
}

func TestEnsureOwner(t *testing.T) {
	t.Parallel()
	e, ctx := newEnv(t), ctxT(t)
	nu := store.NewUser{Email: "Owner@Acme.test", Name: "Olivia Owner", PasswordHash: "h1"}
	first, err := e.s.EnsureOwner(ctx, nu)
	if err != nil {
		t.Fatal(err)
	}
	if first.Role != store.RoleOwner || first.Email != "Owner@Acme.test" {
		t.Fatalf("owner = %+v", first)
	}
	// a retry, even with other details, returns the same user unchanged
	again, err := e.s.EnsureOwner(ctx, store.NewUser{Email: " owner@acme.TEST", Name: "Other", Role: store.RoleOwner, PasswordHash: "h2"})
	if err != nil || again != first {
		t.Fatalf("EnsureOwner again = %+v, %v; want %+v", again, err, first)
	}
	// concurrent retries agree
	var wg sync.WaitGroup
	ids := make([]uuid.UUID, 8)
	errs := make([]error, 8)
	other := store.NewUser{Email: "second@acme.test", Name: "Second", PasswordHash: "h"}
	for i := range ids {
		wg.Go(func() {
			u, err := e.s.EnsureOwner(ctx, other)
			ids[i], errs[i] = u.ID, err
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("concurrent EnsureOwner %d: %v, %v (first %v)", i, ids[i], errs[i], ids[0])
		}
	}
	if n := e.count(t, "users"); n != 2 {
		t.Fatalf("%d users, want 2", n)
	}

	_, err = e.s.EnsureOwner(ctx, store.NewUser{Email: "m@acme.test", Name: "M", Role: store.RoleMember, PasswordHash: "h"})
	wantErr(t, err, store.ErrInvalidInput)
	_, err = e.s.EnsureOwner(ctx, store.NewUser{Email: "bad", Name: "M", PasswordHash: "h"})
	wantErr(t, err, store.ErrInvalidInput)
	_, err = e.s.EnsureOwner(ctx, store.NewUser{Email: "m@acme.test", Name: "M"})
	wantErr(t, err, store.ErrInvalidInput)
}
