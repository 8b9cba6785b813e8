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
		Owner  []byte    `db:"owner_password_sealed"`
	}
	const qt = `SELECT id, slug, role_password, owner_password_sealed FROM tenants ORDER BY slug`
	if err := control.SelectContext(ctx, &tenants, qt); err != nil {
		return rep, dbError("reseal: list tenants", err)
	}
	var roles, owners []sealedSecret
	for _, t := range tenants {
		roles = append(roles, sealedSecret{label: t.Slug, key: t.ID, sealed: t.Sealed, additional: t.ID[:]})
		if t.Owner != nil {
			owners = append(owners, sealedSecret{label: "owner password of " + t.Slug, key: t.ID, sealed: t.Owner, additional: ownerPasswordAD(t.ID)})
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
	var urls []sealedSecret
	for _, s := range servers {
		urls = append(urls, sealedSecret{label: "server " + s.Name, key: s.Name, sealed: s.Sealed, additional: serverURLAD(s.Name)})
	}

	var err error
	if rep.TenantsResealed, rep.TenantsCurrent, err = reseal(ctx, control, sealer, &rep,
		`UPDATE tenants SET role_password = $1 WHERE id = $2 AND role_password = $3`, roles); err != nil {
		return rep, err
	}
	if rep.ServersResealed, rep.ServersCurrent, err = reseal(ctx, control, sealer, &rep,
		`UPDATE database_servers SET url_sealed = $1 WHERE name = $2 AND url_sealed = $3`, urls); err != nil {
		return rep, err
	}
	// a worker that hashed an owner password meanwhile cleared it: its
	// UPDATE then changes nothing
	rep.OwnersResealed, rep.OwnersCurrent, err = reseal(ctx, control, sealer, &rep,
		`UPDATE tenants SET owner_password_sealed = $1 WHERE id = $2 AND owner_password_sealed = $3`, owners)
	return rep, err
}

// sealedSecret is one stored secret: its row's key, what it is sealed
// with, and how to name it in a report.
type sealedSecret struct {
	label      string
	key        any
	sealed     []byte
	additional []byte
}

// reseal re-seals each of secrets that only a previous key opens with
// update ($1 the new sealing, $2 the row's key, $3 the old sealing). It
// counts the rows re-sealed and those already current, and adds the ones
// no key opens to rep.Unreadable.
func reseal(ctx context.Context, control *sqlx.DB, sealer *Sealer, rep *ResealReport, update string, secrets []sealedSecret) (resealed, current int, err error) {
	for _, s := range secrets {
		out, changed, err := sealer.Reseal(s.sealed, s.additional)
		switch {
		case err != nil:
			rep.Unreadable = append(rep.Unreadable, s.label)
			continue
		case !changed:
			current++
			continue
		}
		res, err := control.ExecContext(ctx, update, out, s.key, s.sealed)
		if err != nil {
			return resealed, current, dbError(fmt.Sprintf("reseal: %s", s.label), err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			resealed++
		}
	}
	return resealed, current, nil
}
