package tenancy

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// ResealReport counts what ResealSecrets did with the control database's
// sealed secrets (tenant role passwords, database server URLs, owner
// passwords of sign-ups in progress).
type ResealReport struct {
	TenantsResealed, TenantsCurrent int // re-sealed now; under the current key already
	ServersResealed, ServersCurrent int
	// owner passwords of sign-ups not hashed yet (SignUp seals them)
	OwnersResealed, OwnersCurrent int
	// Unreadable names the rows that no key opens (a tenant's slug, a
	// server as "server NAME"); they are left as they are.
	Unreadable []string
}

// ResealSecrets re-seals, under sealer's current key, every stored secret
// that only a previous key opens: after it, SECRET_KEY_PREVIOUS may go.
// Each row is its own UPDATE, applied only if the row still holds what was
// read (a secret changed meanwhile is left to a re-run), so a crash leaves
// every row sealed under one key or the other and a re-run finishes the
// job. A row no key opens is reported in Unreadable, not an error; errors
// are the control database's.
func ResealSecrets(ctx context.Context, control *sqlx.DB, sealer *Sealer) (ResealReport, error) {
	var rep ResealReport
	var tenants []struct {
		ID     uuid.UUID `db:"id"`
		Slug   string    `db:"slug"`
		Sealed []byte    `db:"role_password"`
	}
	const qt = `SELECT id, slug, role_password FROM tenants ORDER BY slug`
	if err := control.SelectContext(ctx, &tenants, qt); err != nil {
		return rep, dbError("reseal: list tenants", err)
	}
	for _, t := range tenants {
		out, changed, err := sealer.Reseal(t.Sealed, t.ID[:])
		switch {
		case err != nil:
			rep.Unreadable = append(rep.Unreadable, t.Slug)
			continue
		case !changed:
			rep.TenantsCurrent++
			continue
		}
		const q = `UPDATE tenants SET role_password = $1 WHERE id = $2 AND role_password = $3`
		res, err := control.ExecContext(ctx, q, out, t.ID, t.Sealed)
		if err != nil {
			return rep, dbError(fmt.Sprintf("reseal: tenant %s", t.Slug), err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			rep.TenantsResealed++
		}
	}
	var servers []struct {
		Name   string `db:"name"`
		Sealed []byte `db:"url_sealed"`
	}
	const qs = `SELECT name, url_sealed FROM database_servers WHERE url_sealed IS NOT NULL ORDER BY name`
	if err := control.SelectContext(ctx, &servers, qs); err != nil {
		return rep, dbError("reseal: list database servers", err)
	}
	for _, s := range servers {
		out, changed, err := sealer.Reseal(s.Sealed, []byte("server:"+s.Name))
		switch {
		case err != nil:
			rep.Unreadable = append(rep.Unreadable, "server "+s.Name)
			continue
		case !changed:
			rep.ServersCurrent++
			continue
		}
		const q = `UPDATE database_servers SET url_sealed = $1 WHERE name = $2 AND url_sealed = $3`
		res, err := control.ExecContext(ctx, q, out, s.Name, s.Sealed)
		if err != nil {
			return rep, dbError(fmt.Sprintf("reseal: database server %s", s.Name), err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			rep.ServersResealed++
		}
	}
	var owners []struct {
		ID     uuid.UUID `db:"id"`
		Slug   string    `db:"slug"`
		Sealed []byte    `db:"owner_password_sealed"`
	}
	const qo = `SELECT id, slug, owner_password_sealed FROM tenants WHERE owner_password_sealed IS NOT NULL ORDER BY slug`
	if err := control.SelectContext(ctx, &owners, qo); err != nil {
		return rep, dbError("reseal: list owner passwords", err)
	}
	for _, o := range owners {
		out, changed, err := sealer.Reseal(o.Sealed, ownerPasswordAD(o.ID))
		switch {
		case err != nil:
			rep.Unreadable = append(rep.Unreadable, "owner password of "+o.Slug)
			continue
		case !changed:
			rep.OwnersCurrent++
			continue
		}
		// a worker that hashed it meanwhile cleared it: nothing to do then
		const q = `UPDATE tenants SET owner_password_sealed = $1 WHERE id = $2 AND owner_password_sealed = $3`
		res, err := control.ExecContext(ctx, q, out, o.ID, o.Sealed)
		if err != nil {
			return rep, dbError(fmt.Sprintf("reseal: owner password of %s", o.Slug), err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			rep.OwnersResealed++
		}
	}
	return rep, nil
}
