package tenancy

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// Status is a tenant's lifecycle state.
type Status string

// The tenant statuses, as stored in the control database and shown in GraphQL.
const (
	StatusProvisioning Status = "PROVISIONING"
	StatusReady        Status = "READY"
	StatusSuspended    Status = "SUSPENDED"
	StatusFailed       Status = "FAILED"
	StatusDeleting     Status = "DELETING"
	// StatusDeleted is a deleted tenant kept, unreachable, for the grace
	// period: Restore brings it back, the end of the grace purges it.
	StatusDeleted Status = "DELETED"
	// StatusMoving is a tenant being copied to another database server:
	// its queries are served from the old copy, its mutations refused.
	StatusMoving Status = "MOVING"
)

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusProvisioning, StatusReady, StatusSuspended, StatusFailed, StatusDeleting, StatusDeleted, StatusMoving:
		return true
	}
	return false
}

// Tenant is one organization: its registry entry and where its data lives.
// Values handed out by the Registry are never modified; treat them as read-only.
type Tenant struct {
	ID            uuid.UUID
	Slug          string
	Name          string
	Status        Status
	DBName        string
	RoleName      string
	SchemaVersion string
	Server        string // name of the database server holding its database (DefaultServer, ...)
	LastError     string // "" when none
	Step          string // the last step boundary its current job crossed; "" when idle
	MoveTo        string // while MOVING: the server it is being moved to
	Domains       []string
	DeletedAt     *time.Time // set while DELETED
	PurgeAfter    *time.Time // while DELETED: when its database is dropped for good
	CreatedAt     time.Time
	UpdatedAt     time.Time

	sealedPassword []byte
}

// Serving reports whether requests are served from the tenant's database:
// READY, or MOVING (queries only; see Target.Moving).
func (t *Tenant) Serving() bool {
	return t.Status == StatusReady || t.Status == StatusMoving
}

// Host returns the tenant's host under baseDomain, e.g. "acme.example.com".
func (t *Tenant) Host(baseDomain string) string {
	return t.Slug + "." + baseDomain
}

// naming makes and recognises tenant database and role names: a prefix
// and the tenant's uuid in hex, never user text.
type naming struct {
	prefix  string
	pattern *regexp.Regexp
}

var prefixPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,15}_$`)

func newNaming(prefix string) (naming, error) {
	if prefix == "" {
		prefix = DefaultNamePrefix
	}
	if !prefixPattern.MatchString(prefix) {
		return naming{}, fmt.Errorf("tenancy: name prefix %q must match %s", prefix, prefixPattern)
	}
	return naming{prefix: prefix, pattern: regexp.MustCompile(`^` + prefix + `[0-9a-f]{32}$`)}, nil
}

// forID returns the database and role names of a tenant id.
func (n naming) forID(id uuid.UUID) (dbName, roleName string) {
	name := n.prefix + hex.EncodeToString(id[:])
	return name, name
}

// quote validates name against the pattern, then quotes it for DDL.
func (n naming) quote(name string) (string, error) {
	if !n.pattern.MatchString(name) {
		return "", fmt.Errorf("tenancy: refusing identifier %q", name)
	}
	return pq.QuoteIdentifier(name), nil
}

// catalogPattern is the POSIX regular expression matching our names in
// pg_database and pg_roles.
func (n naming) catalogPattern() string { return n.pattern.String() }
