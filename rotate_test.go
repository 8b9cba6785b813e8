package main

import (
	"context"
	"strings"
	"testing"
)

// rotatedSecretKey is the SECRET_KEY that replaces testSecretKey.
const rotatedSecretKey = "rotated-secret-key-0123456789-abcdefgh"

// TestSecretRotation: a tenant created under key A keeps working after a
// restart with SECRET_KEY=B, SECRET_KEY_PREVIOUS=A (its sealed password
// opens, a token signed with A verifies); `tenantql rotate-secret`
// re-seals its password under B, idempotently; after that B alone serves
// it. With B alone before the rotation, neither works.
func TestSecretRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ta := newTestApp(t, nil) // SECRET_KEY=A
	ta.createTenant(t, "rot", false)
	owner := ta.owner(t, "rot")
	owner.createProject(t, "KEEP", "Kept")
	tokenA := owner.token
	ta.stopWorkers()
	const projects = `{ projects { edges { node { key } } } }`
	host := tenantHost("rot")
	restart := func(current, previous string) *testApp {
		t.Helper()
		cfg := ta.cfg
		cfg.SecretKey, cfg.SecretKeyPrevious = current, previous
		return startTestApp(t, cfg, ta.prefix, false)
	}

	// B alone, before the rotation: the password sealed under A does not
	// open (masked to the client), so the tenant is not served
	onlyB := restart(rotatedSecretKey, "")
	if r := onlyB.do(t, host, tokenA, projects, nil); r.Code() != "INTERNAL_SERVER_ERROR" || strings.Contains(r.Raw, "SECRET_KEY") {
		t.Fatalf("a request under B alone: %s", r.Raw)
	}
	if r := onlyB.do(t, host, "", `mutation { login(email: "owner@rot.test", password: "password-rot") { token } }`, nil); r.OK() {
		t.Fatalf("the tenant database opened with a password sealed under A and B alone: %s", r.Raw)
	}
	onlyB.stopWorkers()

	// B with A as the previous key: everything works, new tokens are B's
	rotated := restart(rotatedSecretKey, testSecretKey)
	rotated.waitRouted(t, host, 200)
	if r := mustOK(t, rotated.do(t, host, tokenA, projects, nil)); len(nodes(r, "projects")) != 1 {
		t.Fatalf("projects under B+A: %s", r.Raw)
	}
	tokenB := rotated.login(t, "rot")

	var out strings.Builder
	if err := rotated.rotateSecret(ctx, &out); err != nil {
		t.Fatalf("rotate-secret: %v (%s)", err, out.String())
	}
	if !strings.Contains(out.String(), "tenant passwords: 1 re-sealed, 0 already under SECRET_KEY") {
		t.Fatalf("rotate-secret said %q", out.String())
	}
	out.Reset()
	if err := rotated.rotateSecret(ctx, &out); err != nil || !strings.Contains(out.String(), "tenant passwords: 0 re-sealed, 1 already under SECRET_KEY") {
		t.Fatalf("rotate-secret again: %v, %q", err, out.String())
	}
	// the command line runs the same, and exits 0 with nothing left to do
	env := map[string]string{"DATABASE_URL": ta.cfg.DatabaseURL, "ADMIN_TOKEN": testAdminToken, "BASE_DOMAIN": "example.test",
		"TENANT_NAME_PREFIX": ta.prefix, "SECRET_KEY": rotatedSecretKey, "SECRET_KEY_PREVIOUS": testSecretKey, "LOG_LEVEL": "warn"}
	if code := run([]string{"rotate-secret"}, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("tenantql rotate-secret exited %d", code)
	}
	rotated.stopWorkers()

	// B alone after the rotation: the tenant works, B's tokens verify, A's no more
	after := restart(rotatedSecretKey, "")
	after.waitRouted(t, host, 200)
	if r := mustOK(t, after.do(t, host, tokenB, projects, nil)); len(nodes(r, "projects")) != 1 {
		t.Fatalf("projects under B after the rotation: %s", r.Raw)
	}
	after.login(t, "rot")
	if r := after.do(t, host, tokenA, projects, nil); r.Code() != "UNAUTHENTICATED" {
		t.Fatalf("a token of A once SECRET_KEY_PREVIOUS is gone: %s", r.Raw)
	}
}

// SECRET_KEY_PREVIOUS is a key (32 characters) other than SECRET_KEY, and
// is never logged.
func TestSecretKeyPreviousConfig(t *testing.T) {
	t.Parallel()
	base := map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1/x", "ADMIN_TOKEN": testAdminToken, "SECRET_KEY": rotatedSecretKey}
	load := func(previous string) (Config, error) {
		return LoadConfig(func(k string) string {
			if k == "SECRET_KEY_PREVIOUS" {
				return previous
			}
			return base[k]
		})
	}
	for previous, want := range map[string]string{"short": "at least 32", rotatedSecretKey: "same as SECRET_KEY"} {
		if _, err := load(previous); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("SECRET_KEY_PREVIOUS=%s: %v, want an error saying %q", previous, err, want)
		}
	}
	cfg, err := load(testSecretKey)
	if err != nil || cfg.SecretKeyPrevious != testSecretKey {
		t.Fatalf("a valid previous key: %v", err)
	}
	if s := cfg.LogValue().String(); strings.Contains(s, testSecretKey) || !strings.Contains(s, "secret_key_previous") {
		t.Fatalf("logged configuration: %s", s)
	}
}
