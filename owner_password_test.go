package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tenantql/tenantql/tenancy"
)

// ownerSecrets is what the control database holds of a tenant's owner
// password: the row as text (every column), and whether it holds a hash
// and a sealed password.
type ownerSecrets struct {
	Row    string  `db:"row"`
	Hash   *string `db:"owner_password_hash"`
	Sealed bool    `db:"sealed"`
}

func (ta *testApp) ownerSecrets(t testing.TB, slug string) ownerSecrets {
	t.Helper()
	var s ownerSecrets
	const q = `SELECT row_to_json(t)::text AS row, owner_password_hash, owner_password_sealed IS NOT NULL AS sealed
		FROM tenants t WHERE slug = $1`
	if err := ta.super.Get(&s, q, slug); err != nil {
		t.Fatal(err)
	}
	return s
}

// signUpAsync sends createTenant for slug (owner "owner@<slug>.test",
// password "password-<slug>") and returns at its answer.
func (ta *testApp) signUpAsync(t testing.TB, slug string) {
	t.Helper()
	r := mustOK(t, ta.admin(t, createTenantMutation, map[string]any{"in": map[string]any{
		"organization": "Org " + slug, "slug": slug,
		"owner": map[string]any{"email": "owner@" + slug + ".test", "name": "Owner of " + slug, "password": "password-" + slug},
	}}))
	if s := field(r.Data, "createTenant", "tenant", "status"); s != "PROVISIONING" {
		t.Fatalf("status after create = %v", s)
	}
}

// createTenant answers before the owner's password is hashed (the hash
// runs in the provisioner, beside the database's steps), and meanwhile
// the control database holds the password sealed, never in the clear;
// rotate-secret re-seals it; READY leaves neither the sealed password
// nor the hash in the control database, and the owner signs in with it.
func TestSignUpAnswersBeforeTheOwnerPasswordIsHashed(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, nil)
	ta.stopWorkers() // nothing provisions: what the answer left is all there is
	ta.signUpAsync(t, "pending-owner")
	s := ta.ownerSecrets(t, "pending-owner")
	if s.Hash != nil || !s.Sealed {
		t.Fatalf("after the answer: hash %v, sealed %v; want no hash yet, the password sealed", s.Hash, s.Sealed)
	}
	if strings.Contains(s.Row, "password-pending-owner") {
		t.Fatalf("the control row holds the password in the clear: %s", s.Row)
	}

	// the rotation re-seals it (and the role's password) under the new key
	sealer, err := tenancy.NewSealer(rotatedSecretKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tenancy.ResealSecrets(t.Context(), ta.super, sealer)
	if err != nil || rep.OwnersResealed != 1 || rep.TenantsResealed != 1 || len(rep.Unreadable) > 0 {
		t.Fatalf("reseal: %+v, %v", rep, err)
	}

	// a process with the new key alone finishes the sign-up
	cfg := ta.cfg
	cfg.SecretKey, cfg.SecretKeyPrevious = rotatedSecretKey, ""
	b := startTestApp(t, cfg, ta.prefix, false)
	b.ownerSignsInOnceReady(t, "pending-owner")
}

// ownerSignsInOnceReady waits until the tenant with slug is READY and
// served, signs its owner in, and fails if the control database still
// holds the owner's password in any form.
func (ta *testApp) ownerSignsInOnceReady(t testing.TB, slug string) {
	t.Helper()
	ta.waitStatus(t, slug, "READY")
	ta.waitRouted(t, tenantHost(slug), 200)
	ta.login(t, slug)
	if s := ta.ownerSecrets(t, slug); s.Hash != nil || s.Sealed {
		t.Fatalf("READY with owner secrets left: hash %v, sealed %v", s.Hash, s.Sealed)
	}
}

// A sign-up that fails after the hash keeps the hash in place of the
// sealed password (nothing in the control database opens to the password
// any more), and its retry creates the owner with it.
func TestFailedSignUpKeepsOnlyTheHash(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"TENANTQL_FAILPOINT": "create.after-migrate=error", "PROVISION_MAX_ATTEMPTS": "1"})
	ta.signUpAsync(t, "failed-owner")
	ta.waitStatus(t, "failed-owner", "FAILED")
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := ta.ownerSecrets(t, "failed-owner")
		if s.Hash != nil && !s.Sealed {
			if !strings.HasPrefix(*s.Hash, "$argon2id$") {
				t.Fatalf("owner hash %q", *s.Hash)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FAILED sign-up still holds: hash %v, sealed %v", s.Hash, s.Sealed)
		}
		time.Sleep(20 * time.Millisecond)
	}

	ta.stopWorkers()
	cfg := ta.cfg
	cfg.Failpoint = ""
	b := startTestApp(t, cfg, ta.prefix, false)
	mustOK(t, b.admin(t, `mutation { retryTenant(slug: "failed-owner") { status } }`, nil))
	b.ownerSignsInOnceReady(t, "failed-owner")
}

// A sign-up whose row lost the owner's password (neither sealed nor
// hashed) fails in its owner step instead of making an owner nobody can
// sign in as.
func TestSignUpWithoutAnOwnerPasswordFails(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, map[string]string{"PROVISION_MAX_ATTEMPTS": "1"})
	ta.stopWorkers()
	ta.signUpAsync(t, "lost-owner")
	if _, err := ta.super.Exec(`UPDATE tenants SET owner_password_sealed = NULL WHERE slug = 'lost-owner'`); err != nil {
		t.Fatal(err)
	}
	b := startTestApp(t, ta.cfg, ta.prefix, false)
	tn := b.waitStatus(t, "lost-owner", "FAILED")
	if e, _ := tn["lastError"].(string); !strings.Contains(e, "owner") {
		t.Fatalf("lastError %q does not name the owner step", e)
	}
}
