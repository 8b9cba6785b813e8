package tenancy

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Registry is the tenant registry: the control database's tenants and
// domains, plus an in-memory routing table kept current by Watch so that
// routing a request never queries the control database.
type Registry struct {
	db     *sqlx.DB
	sealer *Sealer
	log    *slog.Logger
	routes *routeTable
	names  naming
	fail   Failpoint     // suspend/resume boundaries; nil in normal operation
	grace  time.Duration // how long a deleted tenant stays DELETED; 0: purged at once
	schema string        // the newest tenant migration: a READY tenant behind it is not served
	// revoked are the OnUserRevoked hooks (guarded by routes.mu)
	revoked []func(tenant, user uuid.UUID)
	// servers places new tenants; nil: every tenant on DefaultServer
	servers *Servers
}

// DefaultNamePrefix starts the name of every tenant database and role.
const DefaultNamePrefix = "tenant_"

// NewRegistry returns a registry on the control database db. namePrefix
// starts every tenant database and role name (DefaultNamePrefix when "");
// deployments sharing one PostgreSQL server need different prefixes.
// Call Load (or Watch) before routing requests.
func NewRegistry(db *sqlx.DB, sealer *Sealer, namePrefix string, log *slog.Logger) (*Registry, error) {
	if log == nil {
		log = slog.Default()
	}
	names, err := newNaming(namePrefix)
	if err != nil {
		return nil, err
	}
	schema, err := latestTenantSchema()
	if err != nil {
		return nil, err
	}
	return &Registry{db: db, sealer: sealer, log: log, routes: newRouteTable(), names: names, grace: DefaultDeleteGrace, schema: schema}, nil
}

// tenantRow is a tenants row as scanned by sqlx.
type tenantRow struct {
	ID            uuid.UUID      `db:"id"`
	Slug          string         `db:"slug"`
	Name          string         `db:"name"`
	Status        string         `db:"status"`
	DBName        string         `db:"db_name"`
	RoleName      string         `db:"role_name"`
	RolePassword  []byte         `db:"role_password"`
	SchemaVersion string         `db:"schema_version"`
	Server        string         `db:"database_server"`
	LastError     sql.NullString `db:"last_error"`
	Step          string         `db:"step"`
	MoveTo        string         `db:"move_to"`
	Domains       pq.StringArray `db:"domains"`
	DeletedAt     sql.NullTime   `db:"deleted_at"`
	PurgeAfter    sql.NullTime   `db:"purge_after"`
	CreatedAt     time.Time      `db:"created_at"`
	UpdatedAt     time.Time      `db:"updated_at"`
}

const tenantColumns = `t.id, t.slug, t.name, t.status, t.db_name, t.role_name, t.role_password,
	t.schema_version, t.database_server, t.last_error, t.step,
	-- the destination of a move: move_server until the switch, then the server itself
	CASE WHEN t.status <> 'MOVING' THEN '' WHEN t.move_switched THEN t.database_server ELSE t.move_server END AS move_to, t.created_at, t.updated_at, t.deleted_at, t.purge_after,
	COALESCE((SELECT array_agg(d.domain ORDER BY d.domain) FROM tenant_domains d WHERE d.tenant_id = t.id), '{}') AS domains`

func (r tenantRow) tenant() *Tenant {
	return &Tenant{
		ID: r.ID, Slug: r.Slug, Name: r.Name, Status: Status(r.Status),
		DBName: r.DBName, RoleName: r.RoleName, SchemaVersion: r.SchemaVersion, Server: r.Server,
		LastError: r.LastError.String, Step: r.Step, MoveTo: r.MoveTo, Domains: []string(r.Domains),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		DeletedAt: utcOrNil(r.DeletedAt), PurgeAfter: utcOrNil(r.PurgeAfter),
		sealedPassword: r.RolePassword,
	}
}

func utcOrNil(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// NewTenant is what createTenant asks for.
type NewTenant struct {
	Slug       string // validated with ValidateSlug
	Name       string
	OwnerEmail string
	OwnerName  string
	// OwnerPassword is kept sealed until the Provisioner has hashed it
	// (see ProvisionerOptions.HashPassword), never in the clear.
	OwnerPassword string
	SeedDemo      bool
	// Server pins the tenant to a database server (it must be ACTIVE);
	// "" lets placement choose (see Servers.Place).
	Server string
}

// Create validates nt and inserts a PROVISIONING tenant; the Provisioner
// then builds its database. Returns ErrInvalidInput or ErrSlugTaken (the
// unique index decides between concurrent creates) before any DDL runs.
func (r *Registry) Create(ctx context.Context, nt NewTenant) (*Tenant, error) {
	if err := ValidateSlug(nt.Slug); err != nil {
		return nil, err
	}
	if err := ValidateName(nt.Name); err != nil {
		return nil, err
	}
	id := uuid.New()
	dbName, roleName := r.names.forID(id)
	password, err := newRolePassword()
	if err != nil {
		return nil, err
	}
	sealed, err := r.sealer.Seal([]byte(password), id[:])
	if err != nil {
		return nil, err
	}
	sealedOwner, err := r.sealer.Seal([]byte(nt.OwnerPassword), ownerPasswordAD(id))
	if err != nil {
		return nil, err
	}
	server := DefaultServer
	if r.servers != nil {
		if server, err = r.servers.Place(ctx, nt.Server); err != nil {
			return nil, err
		}
	} else if nt.Server != "" && nt.Server != DefaultServer {
		return nil, invalid("no database server is named %q", nt.Server)
	}
	const q = `INSERT INTO tenants (id, slug, name, status, db_name, role_name, role_password,
		owner_email, owner_name, owner_password_sealed, seed_demo, database_server)
		VALUES ($1, $2, $3, 'PROVISIONING', $4, $5, $6, $7, $8, $9, $10, $11) RETURNING created_at`
	var created time.Time
	err = r.db.GetContext(ctx, &created, q, id, nt.Slug, strings.TrimSpace(nt.Name), dbName, roleName, sealed,
		nt.OwnerEmail, nt.OwnerName, sealedOwner, nt.SeedDemo, server)
	if err != nil {
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code == "23505" {
			return nil, fmt.Errorf("create tenant %q: %w", nt.Slug, ErrSlugTaken)
		}
		return nil, dbError("create tenant", err)
	}
	t, err := r.refresh(ctx, id)
	if errors.Is(err, ErrTenantNotFound) {
		// A deleteTenant racing this call has removed it already; the
		// caller still gets the tenant it created.
		created = created.UTC()
		return &Tenant{ID: id, Slug: nt.Slug, Name: strings.TrimSpace(nt.Name), Status: StatusProvisioning,
			DBName: dbName, RoleName: roleName, Server: server, CreatedAt: created, UpdatedAt: created, sealedPassword: sealed}, nil
	}
	return t, err
}

// Get returns the tenant with slug, read from the control database.
// Returns ErrTenantNotFound if there is none.
func (r *Registry) Get(ctx context.Context, slug string) (*Tenant, error) {
	q := `SELECT ` + tenantColumns + ` FROM tenants t WHERE t.slug = $1`
	var row tenantRow
	if err := r.db.GetContext(ctx, &row, q, slug); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("tenant %q: %w", slug, ErrTenantNotFound)
		}
		return nil, dbError("get tenant", err)
	}
	return row.tenant(), nil
}

// getByID is Get by id.
func (r *Registry) getByID(ctx context.Context, id uuid.UUID) (*Tenant, error) {
	q := `SELECT ` + tenantColumns + ` FROM tenants t WHERE t.id = $1`
	var row tenantRow
	if err := r.db.GetContext(ctx, &row, q, id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("tenant %s: %w", id, ErrTenantNotFound)
		}
		return nil, dbError("get tenant", err)
	}
	return row.tenant(), nil
}

// ListOptions select a page of tenants, oldest first.
type ListOptions struct {
	First  int     // 1..100
	After  string  // cursor of the last tenant of the previous page, "" for the first page
	Status *Status // only tenants in this status
}

// TenantPage is one page of tenants.
type TenantPage struct {
	Tenants     []*Tenant
	HasNextPage bool
	TotalCount  int
}

// Cursor returns the opaque pagination cursor of t.
func Cursor(t *Tenant) string {
	b := make([]byte, 8+16)
	binary.BigEndian.PutUint64(b, uint64(t.CreatedAt.UnixMicro()))
	copy(b[8:], t.ID[:])
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseCursor(s string) (time.Time, uuid.UUID, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return time.Time{}, uuid.Nil, invalid("after is not a valid cursor")
	}
	id, _ := uuid.FromBytes(b[8:])
	return time.UnixMicro(int64(binary.BigEndian.Uint64(b))), id, nil
}

// List returns a page of tenants in creation order.
// Returns ErrInvalidInput for a bad First, After or Status.
func (r *Registry) List(ctx context.Context, o ListOptions) (TenantPage, error) {
	if o.First < 1 || o.First > 100 {
		return TenantPage{}, invalid("first must be between 1 and 100")
	}
	var status any
	if o.Status != nil {
		if !o.Status.Valid() {
			return TenantPage{}, invalid("unknown status")
		}
		status = string(*o.Status)
	}
	afterTime, afterID := time.Time{}, uuid.Nil
	hasAfter := o.After != ""
	if hasAfter {
		var err error
		if afterTime, afterID, err = parseCursor(o.After); err != nil {
			return TenantPage{}, err
		}
	}
	q := `SELECT ` + tenantColumns + ` FROM tenants t
		WHERE ($1::text IS NULL OR t.status = $1)
		  AND (NOT $2 OR (t.created_at, t.id) > ($3, $4))
		ORDER BY t.created_at, t.id LIMIT $5`
	var rows []tenantRow
	if err := r.db.SelectContext(ctx, &rows, q, status, hasAfter, afterTime, afterID, o.First+1); err != nil {
		return TenantPage{}, dbError("list tenants", err)
	}
	var page TenantPage
	if len(rows) > o.First {
		page.HasNextPage = true
		rows = rows[:o.First]
	}
	for _, row := range rows {
		page.Tenants = append(page.Tenants, row.tenant())
	}
	const qc = `SELECT count(*) FROM tenants WHERE ($1::text IS NULL OR status = $1)`
	if err := r.db.GetContext(ctx, &page.TotalCount, qc, status); err != nil {
		return TenantPage{}, dbError("count tenants", err)
	}
	return page, nil
}

// SetServers makes Create place new tenants on the fleet's servers.
func (r *Registry) SetServers(s *Servers) { r.servers = s }

// SetFailpoint makes Suspend and Resume call f at their boundaries (see
// Boundaries). For fault-injection tests; call it before serving.
func (r *Registry) SetFailpoint(f Failpoint) { r.fail = f }

// setStatus moves the tenant with slug from one of the from statuses to
// to. When op is not "" the move is that lifecycle operation: boundaries
// "<op>.start" before and "<op>.after-status" once it is committed.
// Returns ErrTenantNotFound or ErrWrongState.
func (r *Registry) setStatus(ctx context.Context, op, slug string, to Status, from ...Status) (t *Tenant, err error) {
	start := time.Now()
	defer func() { r.logStatusStep(ctx, op, slug, to, start, t, err) }()
	if op != "" {
		if err := r.fail.check(op + ".start"); err != nil {
			return nil, err
		}
	}
	froms := make([]string, len(from))
	for i, s := range from {
		froms[i] = string(s)
	}
	const q = `UPDATE tenants SET status = $2, updated_at = now(), attempts = 0, next_attempt_at = now(),
			last_error = CASE WHEN $2 = 'DELETING' THEN last_error ELSE NULL END,
			deleted_at = CASE WHEN $2 = 'DELETED' THEN now() WHEN $2 = 'DELETING' THEN deleted_at END,
			purge_after = CASE WHEN $2 = 'DELETED' THEN now() + $4 * interval '1 millisecond'
				WHEN $2 = 'DELETING' THEN purge_after END
		WHERE slug = $1 AND status = ANY($3) RETURNING id`
	var id uuid.UUID
	err = r.db.GetContext(ctx, &id, q, slug, string(to), pq.StringArray(froms), r.grace.Milliseconds())
	for try := 0; errors.Is(err, sql.ErrNoRows); try++ {
		cur, gerr := r.Get(ctx, slug)
		if gerr != nil {
			return nil, gerr
		}
		if cur.Status == to {
			r.routes.put(cur.ID, cur)
			return cur, nil // already there: idempotent
		}
		if !slices.Contains(from, cur.Status) || try == 3 {
			return nil, fmt.Errorf("%w: tenant %q is %s", ErrWrongState, slug, cur.Status)
		}
		// The row changed between the update and the read (a create
		// committing, another status change): try again.
		err = r.db.GetContext(ctx, &id, q, slug, string(to), pq.StringArray(froms), r.grace.Milliseconds())
	}
	if err != nil {
		return nil, dbError("set tenant status", err)
	}
	if op != "" {
		if err := r.fail.check(op + ".after-status"); err != nil {
			return nil, err
		}
	}
	// Our own routing table (and pools) follow at once; other processes
	// within a moment, through NOTIFY.
	return r.refresh(ctx, id)
}

// DefaultDeleteGrace is how long a deleted tenant stays DELETED, and
// restorable, before it is purged (DELETE_GRACE_HOURS).
const DefaultDeleteGrace = 72 * time.Hour

// SetDeleteGrace sets how long Delete keeps a tenant DELETED before the
// Provisioner purges it; 0 or less purges at once. Defaults to
// DefaultDeleteGrace. Call it before serving.
func (r *Registry) SetDeleteGrace(d time.Duration) { r.grace = max(d, 0) }

// Delete takes the tenant off line at once (its host answers 404, its
// tokens fail). Unless purge is set or the grace is 0, the tenant becomes
// DELETED: the Provisioner makes its database unreachable (role NOLOGIN,
// connections refused) and keeps it until PurgeAfter, and Restore brings
// it back; its slug stays taken meanwhile. With purge (or a grace of 0) it
// becomes DELETING: the Provisioner drops its database, role and row.
// Deleting a DELETED tenant with purge purges it; without, it is a no-op,
// as is any delete of a DELETING tenant.
// Returns ErrTenantNotFound if there is no such tenant.
func (r *Registry) Delete(ctx context.Context, slug string, purge bool) (*Tenant, error) {
	var t *Tenant
	var err error
	if purge || r.grace <= 0 {
		t, err = r.setStatus(ctx, "", slug, StatusDeleting,
			StatusProvisioning, StatusReady, StatusSuspended, StatusFailed, StatusDeleted)
	} else {
		t, err = r.setStatus(ctx, "retire", slug, StatusDeleted,
			StatusProvisioning, StatusReady, StatusSuspended, StatusFailed)
	}
	if errors.Is(err, ErrWrongState) {
		if cur, gerr := r.Get(ctx, slug); gerr == nil && cur.Status == StatusDeleting {
			return cur, nil // on its way out already
		}
	}
	return t, err
}

// Restore brings a DELETED tenant back: it becomes PROVISIONING, and the
// Provisioner makes its role LOGIN and its database reachable again (and
// migrates it), then READY, with its data as it was. Restoring a READY
// tenant or one already on its way back is a no-op.
// Returns ErrTenantNotFound or ErrWrongState (any other status).
func (r *Registry) Restore(ctx context.Context, slug string) (*Tenant, error) {
	t, err := r.setStatus(ctx, "restore", slug, StatusProvisioning, StatusDeleted)
	if errors.Is(err, ErrWrongState) {
		if cur, gerr := r.Get(ctx, slug); gerr == nil && cur.Status == StatusReady {
			return cur, nil
		}
	}
	return t, err
}

// Suspend makes a READY tenant answer 403 while keeping its data; its
// pools close. Suspending a SUSPENDED tenant is a no-op.
// Returns ErrTenantNotFound or ErrWrongState.
func (r *Registry) Suspend(ctx context.Context, slug string) (*Tenant, error) {
	return r.setStatus(ctx, "suspend", slug, StatusSuspended, StatusReady)
}

// Resume makes a SUSPENDED tenant READY again. Resuming a READY tenant is
// a no-op. Returns ErrTenantNotFound or ErrWrongState.
func (r *Registry) Resume(ctx context.Context, slug string) (*Tenant, error) {
	return r.setStatus(ctx, "resume", slug, StatusReady, StatusSuspended)
}

// Retry sends a FAILED tenant back to PROVISIONING with a fresh count of
// attempts; the Provisioner picks it up (Kick it).
// Returns ErrTenantNotFound or ErrWrongState.
func (r *Registry) Retry(ctx context.Context, slug string) (*Tenant, error) {
	return r.setStatus(ctx, "", slug, StatusProvisioning, StatusFailed)
}

// AddDomain routes domain (normalized first) to the tenant with slug.
// Returns ErrInvalidInput, ErrTenantNotFound or ErrDomainTaken.
func (r *Registry) AddDomain(ctx context.Context, hosts Hosts, slug, domain string) (*Tenant, error) {
	domain, _ = NormalizeHost(domain)
	if err := ValidateDomain(domain, hosts); err != nil {
		return nil, err
	}
	const q = `INSERT INTO tenant_domains (domain, tenant_id)
		SELECT $2, id FROM tenants WHERE slug = $1 AND status NOT IN ('DELETING', 'DELETED') RETURNING tenant_id`
	var id uuid.UUID
	err := r.db.GetContext(ctx, &id, q, slug, domain)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("tenant %q: %w", slug, ErrTenantNotFound)
	}
	if err != nil {
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code == "23505" {
			return nil, fmt.Errorf("domain %q: %w", domain, ErrDomainTaken)
		}
		return nil, dbError("add domain", err)
	}
	return r.refresh(ctx, id)
}

// RemoveDomain stops routing domain to the tenant with slug.
// Returns ErrTenantNotFound or ErrDomainNotFound.
func (r *Registry) RemoveDomain(ctx context.Context, slug, domain string) (*Tenant, error) {
	domain, _ = NormalizeHost(domain)
	t, err := r.Get(ctx, slug)
	if err != nil {
		return nil, err
	}
	const q = `DELETE FROM tenant_domains WHERE tenant_id = $1 AND domain = $2`
	res, err := r.db.ExecContext(ctx, q, t.ID, domain)
	if err != nil {
		return nil, dbError("remove domain", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("domain %q: %w", domain, ErrDomainNotFound)
	}
	return r.refresh(ctx, t.ID)
}
