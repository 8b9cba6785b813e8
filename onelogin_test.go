package main

import (
	"strings"
	"testing"
)

// One request is at most one password guess: aliased or fragment-spread
// login fields are refused before any password is checked.
func TestOneLoginPerRequest(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.createTenant(t, "guess", false)
	var b strings.Builder
	b.WriteString("mutation {")
	for i := range 30 {
		b.WriteString(` g` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `: login(email: "owner@guess.test", password: "guess-` + string(rune('a'+i%26)) + `") { token }`)
	}
	b.WriteString(" }")
	for name, q := range map[string]string{
		"30 aliases": b.String(),
		"fragments":  `mutation { ...A ...B } fragment A on Mutation { login(email: "owner@guess.test", password: "one") { token } } fragment B on Mutation { x: login(email: "owner@guess.test", password: "password-guess") { token } }`,
	} {
		r := ta.do(t, tenantHost("guess"), "", q, nil)
		if r.Code() != "BAD_USER_INPUT" || !strings.Contains(r.Raw, "at most one login") || strings.Contains(r.Raw, "token\":\"") {
			t.Fatalf("%s: HTTP %d %s", name, r.Status, r.Raw)
		}
	}
	ta.login(t, "guess") // one login still works
}
