package tenancy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/google/uuid"
)

// AuditEntry is the record of one platform mutation.
type AuditEntry struct {
	At               time.Time  `db:"at"`
	Action           string     `db:"action"`      // the mutation, e.g. "deleteTenant"
	TenantSlug       string     `db:"tenant_slug"` // "" when none was named
	TenantID         *uuid.UUID `db:"tenant_id"`   // nil when unknown (a refused create)
	RequestID        string     `db:"request_id"`
	ClientAddr       string     `db:"client_addr"`
	TokenFingerprint string     `db:"token_fingerprint"` // TokenFingerprint of the bearer token
	Outcome          string     `db:"outcome"`           // "ok", or the error code
}

// TokenFingerprint names a bearer token without revealing it: the first
// 16 hex digits of its SHA-256, "" for no token.
func TokenFingerprint(token string) string {
	if token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// RecordAudit adds e to the audit table of platform mutations; At is set
// by the database.
func (r *Registry) RecordAudit(ctx context.Context, e AuditEntry) error {
	const q = `INSERT INTO platform_audit (action, tenant_slug, tenant_id, request_id, client_addr, token_fingerprint, outcome)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`
	if _, err := r.db.ExecContext(ctx, q, e.Action, e.TenantSlug, e.TenantID, e.RequestID, e.ClientAddr, e.TokenFingerprint, e.Outcome); err != nil {
		return dbError("record audit", err)
	}
	return nil
}

// Audit returns the last limit (1 to 10000) platform mutations, newest
// first. Returns ErrInvalidInput for another limit.
func (r *Registry) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit < 1 || limit > 10000 {
		return nil, invalid("limit must be between 1 and 10000")
	}
	const q = `SELECT at, action, tenant_slug, tenant_id, request_id, client_addr, token_fingerprint, outcome
		FROM platform_audit ORDER BY at DESC, id DESC LIMIT $1`
	var out []AuditEntry
	if err := r.db.SelectContext(ctx, &out, q, limit); err != nil {
		return nil, dbError("list audit", err)
	}
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, nil
}
