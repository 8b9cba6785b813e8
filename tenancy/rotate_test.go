package tenancy

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// TestResealSecrets: tenant passwords and database server URLs that only
// the previous key opens are re-sealed under the current one, each row
// on its own; those under the current key stay as they are; a row no key
// opens is reported and left; a second run changes nothing.
func TestResealSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	control := openT(t, pgtest.NewControlDatabase(t))
	if _, err := MigrateControl(ctx, control.DB); err != nil {
		t.Fatal(err)
	}
	keyA, keyB, keyC := "secret-key-A-0123456789-0123456789", "secret-key-B-0123456789-0123456789", "secret-key-C-0123456789-0123456789"
	underA, _ := NewSealer(keyA)
	underB, _ := NewSealer(keyB)
	underC, _ := NewSealer(keyC)
	rotated, err := NewSealer(keyB, keyA)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(s *Sealer, plain string, additional []byte) []byte {
		b, err := s.Seal([]byte(plain), additional)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ids := map[string]uuid.UUID{}
	for slug, s := range map[string]*Sealer{"old-a": underA, "old-b": underA, "new": underB, "lost": underC} {
		id := uuid.New()
		ids[slug] = id
		if _, err := control.Exec(`INSERT INTO tenants (id, slug, name, status, db_name, role_name, role_password)
			VALUES ($1, $2, $2, 'READY', 'x_'||$2, 'x_'||$2, $3)`, id, slug, seal(s, "pw-"+slug, id[:])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := control.Exec(`INSERT INTO database_servers (name, host, url_sealed) VALUES ('b', 'h', $1)`,
		seal(underA, "postgres://u:p@h/db", []byte("server:b"))); err != nil {
		t.Fatal(err)
	}
	var newBefore []byte
	_ = control.Get(&newBefore, `SELECT role_password FROM tenants WHERE slug = 'new'`)

	rep, err := ResealSecrets(ctx, control, rotated)
	if err != nil {
		t.Fatal(err)
	}
	if rep.TenantsResealed != 2 || rep.TenantsCurrent != 1 || rep.ServersResealed != 1 || rep.ServersCurrent != 0 ||
		len(rep.Unreadable) != 1 || rep.Unreadable[0] != "lost" {
		t.Fatalf("first run: %+v", rep)
	}
	// B alone opens every re-sealed secret, bound to its row as before
	for _, slug := range []string{"old-a", "old-b", "new"} {
		var sealed []byte
		if err := control.Get(&sealed, `SELECT role_password FROM tenants WHERE slug = $1`, slug); err != nil {
			t.Fatal(err)
		}
		id := ids[slug]
		if plain, err := underB.Open(sealed, id[:]); err != nil || string(plain) != "pw-"+slug {
			t.Errorf("%s under B: %q, %v", slug, plain, err)
		}
		if slug == "new" && !bytes.Equal(sealed, newBefore) {
			t.Errorf("a password already under B was re-sealed")
		}
	}
	var url []byte
	_ = control.Get(&url, `SELECT url_sealed FROM database_servers WHERE name = 'b'`)
	if plain, err := underB.Open(url, []byte("server:b")); err != nil || string(plain) != "postgres://u:p@h/db" {
		t.Errorf("server URL under B: %q, %v", plain, err)
	}
	var lost []byte
	_ = control.Get(&lost, `SELECT role_password FROM tenants WHERE slug = 'lost'`)
	lostID := ids["lost"]
	if _, err := underC.Open(lost, lostID[:]); err != nil {
		t.Errorf("the unreadable row was changed: %v", err)
	}

	rep, err = ResealSecrets(ctx, control, rotated)
	if err != nil || rep.TenantsResealed != 0 || rep.TenantsCurrent != 3 || rep.ServersResealed != 0 || rep.ServersCurrent != 1 {
		t.Fatalf("second run: %+v, %v", rep, err)
	}
}

// A sealer opens what its previous keys sealed, seals under its current
// key only, and opens nothing of another key.
func TestSealerOpensThePreviousKey(t *testing.T) {
	t.Parallel()
	keyA, keyB := "secret-key-A-0123456789-0123456789", "secret-key-B-0123456789-0123456789"
	underA, _ := NewSealer(keyA)
	rotated, err := NewSealer(keyB, keyA)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := underA.Seal([]byte("pw"), []byte("t1"))
	if p, err := rotated.Open(old, []byte("t1")); err != nil || string(p) != "pw" {
		t.Fatalf("open under the previous key: %q, %v", p, err)
	}
	if _, err := rotated.Open(old, []byte("t2")); err == nil {
		t.Fatal("opened with another row's additional data")
	}
	fresh, _ := rotated.Seal([]byte("pw"), []byte("t1"))
	if _, err := underA.Open(fresh, []byte("t1")); err == nil {
		t.Fatal("a new secret was sealed under the previous key")
	}
	if _, err := NewSealer(keyB, "short"); err == nil {
		t.Fatal("a short previous key accepted")
	}
}
