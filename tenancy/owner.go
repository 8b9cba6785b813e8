package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// hashOwnerPassword starts hashing the owner's password that SignUp
// sealed into j's row, when the owner is still to be created, and returns
// the function that waits for the hash. Once hashed, the row keeps the
// hash in place of the sealed password, so a sign-up that then fails or
// waits for a retry holds no recoverable password. A job whose earlier
// pass hashed it already just gets that hash.
func (p *Provisioner) hashOwnerPassword(ctx context.Context, t *Tenant, j job) func() (string, error) {
	switch {
	case !j.OwnerEmail.Valid || j.OwnerPasswordHash.Valid:
		return func() (string, error) { return j.OwnerPasswordHash.String, nil }
	case len(j.OwnerPasswordSealed) == 0:
		// never an owner without a password: the row lost both forms
		return func() (string, error) {
			return "", errors.New("tenancy: the owner's password is missing from the tenant's row")
		}
	}
	type result struct {
		hash string
		err  error
	}
	done := make(chan result, 1) // the hash may outlive a job that failed first
	go func() {
		hash, err := p.sealedToHash(ctx, t, j.OwnerPasswordSealed)
		done <- result{hash, err}
	}()
	return func() (string, error) {
		select {
		case r := <-done:
			return r.hash, r.err
		case <-ctx.Done():
			return "", context.Cause(ctx)
		}
	}
}

// sealedToHash opens the sealed owner password of t, hashes it and keeps
// the hash in t's row instead.
func (p *Provisioner) sealedToHash(ctx context.Context, t *Tenant, sealed []byte) (string, error) {
	if p.opts.HashPassword == nil {
		return "", errors.New("tenancy: no password hasher to finish a sign-up with")
	}
	plain, err := p.reg.sealer.Open(sealed, ownerPasswordAD(t.ID))
	if err != nil {
		return "", fmt.Errorf("owner password: %w", err)
	}
	hash, err := p.opts.HashPassword(string(plain))
	clear(plain)
	if err != nil {
		return "", fmt.Errorf("owner password: %w", err)
	}
	// kept even when this pass fails meanwhile (its context then ends)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	const q = `UPDATE tenants SET owner_password_hash = $2, owner_password_sealed = NULL
		WHERE id = $1 AND owner_password_sealed IS NOT NULL`
	if _, err := p.control.ExecContext(ctx, q, t.ID, hash); err != nil {
		// the hash is still right for this pass; READY clears the sealed copy
		p.log.Warn("keep the owner's password hash", "tenant", t.Slug, "err", dbError("keep owner password hash", err))
	}
	return hash, nil
}
