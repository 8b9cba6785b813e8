package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Owner is the first user of a new tenant.
type Owner struct {
	Email        string
	Name         string
	PasswordHash string
}

// Seeder fills a freshly migrated tenant database. Both methods must be
// idempotent: a crash can make the provisioner call them again.
type Seeder interface {
	// CreateOwner creates the OWNER user unless a user with that email exists.
	CreateOwner(ctx context.Context, db *sqlx.DB, o Owner) error
	// SeedDemo adds demo data unless it is already there.
	SeedDemo(ctx context.Context, db *sqlx.DB, owner Owner) error
}

// ProvisionerOptions tune the reconciler.
type ProvisionerOptions struct {
	Workers          int           // concurrent jobs; defaults to 4
	Lease            time.Duration // how long a claimed job is ours; defaults to 60s
	Poll             time.Duration // how often to look for work with no kick; defaults to 1s
	MaxAttempts      int           // failed attempts before FAILED; defaults to 5
	BaseBackoff      time.Duration // first retry delay, doubled each time; defaults to 1s
	RoleConnLimit    int           // CONNECTION LIMIT of tenant roles; defaults to 20
	StatementTimeout string        // statement_timeout of tenant roles; defaults to "30s"
	// Failpoint, when set, is called at every step boundary with a name such
	// as "create.after-database"; a non-nil error fails the step. Tests use
	// it to inject faults; it is nil in normal operation.
	Failpoint func(name string) error
}

// Provisioner drives each tenant row toward its desired state: PROVISIONING
// rows get a role, a database, privileges, migrations and an owner, then
// become READY; DELETING rows lose their database and role, then their row.
// Every step first checks what exists, so a crash anywhere is finished by
// the next pass, on this process or another (work is claimed with a lease).
type Provisioner struct {
	control *sqlx.DB
	reg     *Registry
	pools   *Pools
	seeder  Seeder
	opts    ProvisionerOptions
	log     *slog.Logger
	me      string // lease owner name of this process
	kick    chan struct{}
}

// NewProvisioner returns a reconciler working through the control database.
func NewProvisioner(control *sqlx.DB, reg *Registry, pools *Pools, seeder Seeder, o ProvisionerOptions, log *slog.Logger) *Provisioner {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Lease <= 0 {
		o.Lease = 60 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = time.Second
	}
	if o.RoleConnLimit <= 0 {
		o.RoleConnLimit = 20
	}
	if o.StatementTimeout == "" {
		o.StatementTimeout = "30s"
	}
	if log == nil {
		log = slog.Default()
	}
	host, _ := os.Hostname()
	return &Provisioner{
		control: control, reg: reg, pools: pools, seeder: seeder, opts: o, log: log,
		me:   fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8]),
		kick: make(chan struct{}, o.Workers),
	}
}

// Kick wakes the workers: there is new work.
func (p *Provisioner) Kick() {
	for range p.opts.Workers {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// Run works until ctx ends.
func (p *Provisioner) Run(ctx context.Context) {
	done := make(chan struct{})
	for range p.opts.Workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for ctx.Err() == nil {
				for {
					worked, err := p.RunOnce(ctx)
					if err != nil && ctx.Err() == nil {
						p.log.Warn("reconcile", "err", err)
					}
					if !worked || ctx.Err() != nil {
						break
					}
				}
				jitter := time.Duration(rand.Int64N(int64(p.opts.Poll) / 4))
				select {
				case <-ctx.Done():
				case <-p.kick:
				case <-time.After(p.opts.Poll + jitter):
				}
			}
		}()
	}
	for range p.opts.Workers {
		<-done
	}
}

// job is a claimed tenant row.
type job struct {
	ID                uuid.UUID      `db:"id"`
	Status            string         `db:"status"`
	Attempts          int            `db:"attempts"`
	OwnerEmail        sql.NullString `db:"owner_email"`
	OwnerName         sql.NullString `db:"owner_name"`
	OwnerPasswordHash sql.NullString `db:"owner_password_hash"`
	SeedDemo          bool           `db:"seed_demo"`
}

var errLeaseLost = errors.New("lease lost or tenant changed")

// RunOnce claims one due tenant and drives it as far as it goes. It
// reports whether there was work.
func (p *Provisioner) RunOnce(ctx context.Context) (bool, error) {
	const q = `UPDATE tenants SET lease_owner = $1, lease_expires_at = now() + $2 * interval '1 millisecond'
		WHERE id = (SELECT id FROM tenants
			WHERE status IN ('PROVISIONING', 'DELETING') AND next_attempt_at <= now()
			  AND (lease_expires_at IS NULL OR lease_expires_at < now())
			ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING id, status, attempts, owner_email, owner_name, owner_password_hash, seed_demo`
	var j job
	err := p.control.GetContext(ctx, &j, q, p.me, p.opts.Lease.Milliseconds())
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, dbError("claim tenant job", err)
	}
	t, err := p.reg.refresh(ctx, j.ID)
	if err != nil {
		return true, err
	}
	log := p.log.With("tenant", t.Slug, "tenant_id", t.ID)
	switch Status(j.Status) {
	case StatusProvisioning:
		err = p.provision(ctx, t, j)
	case StatusDeleting:
		err = p.drop(ctx, t)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errLeaseLost):
		log.Info("tenant changed while working on it; handing it back", "err", err)
		p.release(ctx, t.ID)
		p.Kick()
		return true, nil
	case ctx.Err() != nil:
		return true, nil // shutting down: the lease expires and someone finishes
	}
	log.Error("tenant step failed", "status", j.Status, "attempt", j.Attempts+1, "err", err)
	return true, p.fail(ctx, t.ID, j, err)
}

// boundary records that the job reached step, renews the lease and checks
// the tenant still wants what we are doing.
func (p *Provisioner) boundary(ctx context.Context, id uuid.UUID, status Status, step string) error {
	if p.opts.Failpoint != nil {
		if err := p.opts.Failpoint(step); err != nil {
			return fmt.Errorf("failpoint %s: %w", step, err)
		}
	}
	const q = `UPDATE tenants SET step = $3, lease_expires_at = now() + $5 * interval '1 millisecond'
		WHERE id = $1 AND lease_owner = $2 AND status = $4`
	res, err := p.control.ExecContext(ctx, q, id, p.me, step, string(status), p.opts.Lease.Milliseconds())
	if err != nil {
		return dbError("record step", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeaseLost
	}
	return nil
}

func (p *Provisioner) release(ctx context.Context, id uuid.UUID) {
	const q = `UPDATE tenants SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2`
	if _, err := p.control.ExecContext(ctx, q, id, p.me); err != nil {
		p.log.Warn("release tenant lease", "tenant_id", id, "err", err)
	}
}

// fail records a failed attempt: retried after a backoff, FAILED once
// MaxAttempts is reached (a DELETING tenant is retried for ever).
func (p *Provisioner) fail(ctx context.Context, id uuid.UUID, j job, cause error) error {
	attempts := j.Attempts + 1
	backoff := min(p.opts.BaseBackoff<<min(attempts-1, 10), 5*time.Minute)
	msg := fmt.Sprintf("%s (attempt %d of %d)", publicError(cause), attempts, p.opts.MaxAttempts)
	const q = `UPDATE tenants SET attempts = $3::int, last_error = $4,
			status = CASE WHEN status = 'PROVISIONING' AND $3::int >= $5::int THEN 'FAILED' ELSE status END,
			next_attempt_at = now() + $6 * interval '1 millisecond',
			lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
		WHERE id = $1 AND lease_owner = $2`
	if _, err := p.control.ExecContext(context.WithoutCancel(ctx), q, id, p.me, attempts, msg,
		p.opts.MaxAttempts, backoff.Milliseconds()); err != nil {
		return dbError("record failure", err)
	}
	_, _ = p.reg.refresh(context.WithoutCancel(ctx), id)
	return nil
}

// publicError describes err for lastError: the step and a class of
// failure, never SQL text or secrets (those go to the log).
func publicError(err error) string {
	var se *stepError
	step := "provisioning"
	if errors.As(err, &se) {
		step = se.step
	}
	var pqErr *pq.Error
	switch {
	case errors.As(err, &pqErr):
		return fmt.Sprintf("%s failed: database error %s", step, pqErr.Code.Name())
	case isUnavailable(err):
		return fmt.Sprintf("%s failed: database unavailable", step)
	case errors.Is(err, errFailpoint):
		return fmt.Sprintf("%s failed: injected fault", step)
	}
	return fmt.Sprintf("%s failed: internal error", step)
}

// errFailpoint marks errors injected by a failpoint.
var errFailpoint = errors.New("injected fault")

// ErrFailpoint is what a Failpoint function returns to fail a step.
var ErrFailpoint = errFailpoint

type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func inStep(step string, err error) error {
	if err == nil || errors.Is(err, errLeaseLost) {
		return err
	}
	return &stepError{step: step, err: err}
}
