package tenancy

import (
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/internal/pgtest"
)

// TestCheckControlRole: the start-up check passes the role production
// gets (CREATEDB CREATEROLE, owner of the control database) and names
// everything a weaker role lacks, with the statements that fix it.
func TestCheckControlRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	good := openT(t, pgtest.NewControlDatabase(t))
	if err := CheckControlRole(ctx, good); err != nil {
		t.Fatalf("a CREATEDB CREATEROLE owner of the control database: %v", err)
	}

	// a LOGIN role with nothing else, on a database it does not own
	super := openT(t, pgtest.AdminURL(t))
	name := "weak_" + strings.ToLower(rand.Text()[:10])
	password := rand.Text()
	if _, err := super.Exec(`CREATE ROLE ` + pq.QuoteIdentifier(name) + ` LOGIN PASSWORD ` + pq.QuoteLiteral(password)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = super.Exec(`DROP ROLE IF EXISTS ` + pq.QuoteIdentifier(name)) })
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(name, password)
	weak := openT(t, u.String())
	err = CheckControlRole(ctx, weak)
	if !errors.Is(err, ErrControlRole) {
		t.Fatalf("want ErrControlRole, got %v", err)
	}
	for _, want := range []string{"CREATEDB", "CREATEROLE", "ownership of the control database", "ALTER DATABASE", "OWNER TO"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), password) {
		t.Error("message holds the role's password")
	}
}

func openT(t *testing.T, dsn string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
