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
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantql/tenantql/pgerr"
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

// DefaultRoleConnLimit is the CONNECTION LIMIT of tenant roles: all of a
// tenant's connections, from every server process, together.
const DefaultRoleConnLimit = 20

// ProvisionerOptions tune the reconciler.
type ProvisionerOptions struct {
	Workers int // concurrent jobs; defaults to 4
	// Lease is how long a claimed job is ours without news from us. A
	// worker renews it every Lease/3 while it works, so only a process
	// that died (or lost the control database) lets it run out; another
	// pass then takes the job over. Defaults to 60s.
	Lease            time.Duration
	Poll             time.Duration // how often to look for work with no kick; defaults to 1s
	MaxAttempts      int           // failed attempts before FAILED; defaults to 5
	BaseBackoff      time.Duration // first retry delay, doubled each time; defaults to 1s
	RoleConnLimit    int           // CONNECTION LIMIT of tenant roles; defaults to DefaultRoleConnLimit
	StatementTimeout string        // statement_timeout of tenant roles; defaults to "30s"
	// Failpoint, when set, is called at every create and delete boundary
	// (see Boundaries). It is nil in normal operation.
	Failpoint Failpoint
	// Reserve hands out the spare databases and the template of each
	// tenant's server; nil: every tenant database is made from template0
	// and migrated.
	Reserve *Reserve
	// Servers reaches the database servers of tenants not on the default
	// one; nil: every tenant is on the default server.
	Servers *Servers
	// TracerProvider, when set, makes a span of every job, with a span per
	// step (events.go); nil: none.
	TracerProvider trace.TracerProvider
	// HashPassword hashes a new tenant's owner password (sealed by SignUp)
	// while the tenant's database is prepared; a sign-up cannot finish
	// without it.
	HashPassword PasswordHasher
}

// Provisioner drives each tenant row toward its desired state: PROVISIONING
// rows get a role, a database, privileges, migrations and an owner, then
// become READY; DELETED rows are made unreachable, then wait for the end of
// their grace; DELETING rows lose their database and role, then their row.
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
	// presence says, through PostgreSQL, which lease owners are alive
	presence *Presence
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
		o.RoleConnLimit = DefaultRoleConnLimit
	}
	if o.StatementTimeout == "" {
		o.StatementTimeout = "30s"
	}
	if log == nil {
		log = slog.Default()
	}
	host, _ := os.Hostname()
	me := fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8])
	return &Provisioner{
		control: control, reg: reg, pools: pools, seeder: seeder, opts: o, log: log,
		me: me, kick: make(chan struct{}, o.Workers),
		presence: NewPresence(control, me, log),
	}
}

// Presence returns the process's presence in the control database, which
// Run keeps while it works.
func (p *Provisioner) Presence() *Presence { return p.presence }

// Kick wakes the workers: there is new work.
func (p *Provisioner) Kick() {
	for range p.opts.Workers {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// Run works until ctx ends, holding the process's Presence meanwhile: jobs
// are claimed only while it is held.
func (p *Provisioner) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer func() { done <- struct{}{} }()
		p.presence.Run(ctx)
	}()
	defer func() { <-done }()
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
	Step              string         `db:"step"`
	Attempts          int            `db:"attempts"`
	Takeover          bool           `db:"takeover"` // the previous worker's lease ran out: it died mid-step
	OwnerEmail        sql.NullString `db:"owner_email"`
	OwnerName         sql.NullString `db:"owner_name"`
	OwnerPasswordHash sql.NullString `db:"owner_password_hash"`
	// OwnerPasswordSealed is the owner's password as SignUp sealed it,
	// until a worker has hashed it (owner.go)
	OwnerPasswordSealed []byte `db:"owner_password_sealed"`
	SeedDemo            bool   `db:"seed_demo"`
	// a MOVING tenant's other copy (move.go)
	MoveServer   sql.NullString `db:"move_server"`
	MoveDBName   sql.NullString `db:"move_db_name"`
	MoveSwitched bool           `db:"move_switched"`
	MoveAbort    bool           `db:"move_abort"`
}

// undoableMove reports whether j is a move that has not switched to its
// new copy yet (nor been given up): failing it for good undoes it.
func (j job) undoableMove() bool {
	return Status(j.Status) == StatusMoving && !j.MoveSwitched && !j.MoveAbort
}

var errLeaseLost = errors.New("lease lost or tenant changed")

// errInterrupted is the failure of an attempt whose worker stopped (a
// crash) before it could record anything.
var errInterrupted = errors.New("interrupted: the process working on it stopped")

// claim takes one due tenant with a lease. A job is due when nobody holds
// it, when its lease ran out, or at once when its lease owner's presence
// lock is free: that process is gone (a live one, however slow, holds
// it). A job taken over so (its worker died) counts that interrupted try
// as an attempt, so a step that kills its process every time still ends
// FAILED.
func (p *Provisioner) claim(ctx context.Context) (job, bool, error) {
	const q = `WITH due AS (
			SELECT id, lease_owner IS NOT NULL AS takeover FROM tenants
			WHERE status IN ('PROVISIONING', 'DELETING', 'DELETED', 'MOVING') AND next_attempt_at <= now()
			  AND (lease_expires_at IS NULL OR lease_expires_at < now()
				OR pg_try_advisory_xact_lock($3, hashtext(lease_owner)))
			ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
		UPDATE tenants t SET lease_owner = $1, lease_expires_at = now() + $2 * interval '1 millisecond',
			attempts = t.attempts + CASE WHEN due.takeover THEN 1 ELSE 0 END
		FROM due WHERE t.id = due.id
		RETURNING t.id, t.status, t.step, t.attempts, due.takeover,
			t.owner_email, t.owner_name, t.owner_password_hash, t.owner_password_sealed, t.seed_demo,
			t.move_server, t.move_db_name, t.move_switched, t.move_abort`
	var j job
	err := p.control.GetContext(ctx, &j, q, p.me, p.opts.Lease.Milliseconds(), presenceLockSpace)
	if errors.Is(err, sql.ErrNoRows) {
		return j, false, nil
	}
	if err != nil {
		return j, false, dbError("claim tenant job", err)
	}
	return j, true, nil
}

// RunOnce claims one due tenant and drives it as far as it goes. It
// reports whether there was work.
func (p *Provisioner) RunOnce(ctx context.Context) (bool, error) {
	held, presenceLost := p.presence.Held()
	if !held {
		return false, nil // others could take a job claimed now at once
	}
	j, ok, err := p.claim(ctx)
	if !ok {
		return false, err
	}
	log := p.log.With("tenant_id", j.ID, "status", j.Status)
	if j.Takeover {
		log.Warn("taking over a tenant job whose worker stopped", "step", j.Step, "attempt", j.Attempts)
		if (Status(j.Status) == StatusProvisioning || j.undoableMove()) && j.Attempts >= p.opts.MaxAttempts {
			op := map[bool]string{true: "create", false: "move"}[Status(j.Status) == StatusProvisioning]
			return true, p.fail(ctx, j, j.Attempts, &stepError{step: stepOrStart(j.Step, op), err: errInterrupted})
		}
	}
	jobCtx, cancel := context.WithCancelCause(ctx)
	stopHeartbeat := p.heartbeat(jobCtx, cancel, j.ID, Status(j.Status), presenceLost)
	err = p.work(jobCtx, j)
	stopHeartbeat()
	lost := errors.Is(context.Cause(jobCtx), errLeaseLost)
	cancel(nil)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errLeaseLost), lost:
		log.Info("tenant changed while working on it; handing it back", "err", err)
		p.release(ctx, j.ID)
		p.Kick()
		return true, nil
	case ctx.Err() != nil:
		// Shutting down: hand the job back now rather than let a
		// restarted process wait for the lease to run out.
		p.release(ctx, j.ID)
		return true, nil
	}
	attempts := j.Attempts + 1
	if pgerr.IsUnavailable(err) {
		attempts = j.Attempts // an outage is nobody's fault: retry without using up attempts
	}
	log.Error("tenant step failed", "attempt", attempts, "err", err)
	return true, p.fail(ctx, j, attempts, err)
}

// work refreshes the claimed tenant and drives it (in a span of its own
// when tracing is on: traceJob).
func (p *Provisioner) work(ctx context.Context, j job) (err error) {
	ctx, end := p.traceJob(ctx, j)
	defer func() { end(err) }()
	t, err := p.reg.refresh(ctx, j.ID)
	if err != nil {
		return err
	}
	addTenantToSpan(ctx, t)
	switch Status(j.Status) {
	case StatusProvisioning:
		return p.provision(ctx, t, j)
	case StatusDeleting:
		return p.drop(ctx, t)
	case StatusDeleted:
		return p.retire(ctx, t)
	case StatusMoving:
		if j.MoveAbort {
			return p.unmove(ctx, t, j)
		}
		return p.move(ctx, t, j)
	}
	return errLeaseLost
}

func stepOrStart(step, op string) string {
	if step == "" {
		return op + ".start"
	}
	return step
}

// heartbeat renews the job's lease every Lease/3 while it runs. It cancels
// ctx with errLeaseLost when the tenant left status (a deleteTenant during
// provisioning, say), when the lease could not be renewed before it ran
// out, or when presenceLost is closed, since another process may then
// have taken the job over.
func (p *Provisioner) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, id uuid.UUID, status Status, presenceLost <-chan struct{}) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(p.opts.Lease / 3)
		defer tick.Stop()
		renewed := time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-presenceLost:
				cancel(errLeaseLost)
				return
			case <-tick.C:
			}
			const q = `UPDATE tenants SET lease_expires_at = now() + $4 * interval '1 millisecond'
				WHERE id = $1 AND lease_owner = $2 AND status = $3`
			res, err := p.control.ExecContext(ctx, q, id, p.me, string(status), p.opts.Lease.Milliseconds())
			if err == nil {
				if n, _ := res.RowsAffected(); n == 0 {
					cancel(errLeaseLost)
					return
				}
				renewed = time.Now()
				continue
			}
			if time.Since(renewed) > p.opts.Lease {
				cancel(errLeaseLost)
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

// boundary records that the job reached step, renews the lease and checks
// the tenant still wants what we are doing.
func (p *Provisioner) boundary(ctx context.Context, id uuid.UUID, status Status, step string) error {
	if err := p.opts.Failpoint.check(step); err != nil {
		return err
	}
	const q = `UPDATE tenants SET step = $3, lease_expires_at = now() + $5 * interval '1 millisecond'
		WHERE id = $1 AND lease_owner = $2 AND status = $4`
	res, err := p.control.ExecContext(ctx, q, id, p.me, step, string(status), p.opts.Lease.Milliseconds())
	if err != nil {
		return inStep(step, dbError("record step", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeaseLost
	}
	return nil
}

// release hands a job back (lease cleared, due at once). It survives a
// short outage of the control database by trying again for up to half a
// lease; after that the lease simply runs out.
func (p *Provisioner) release(ctx context.Context, id uuid.UUID) {
	const q = `UPDATE tenants SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2`
	err := p.persist(ctx, func(ctx context.Context) error {
		_, err := p.control.ExecContext(ctx, q, id, p.me)
		return err
	})
	if err != nil {
		p.log.Warn("release tenant lease", "tenant_id", id, "err", err)
	}
}

// persist runs f on the control database even while ctx is being
// cancelled, retrying connection failures for up to Lease/2 (2s at
// shutdown, which must not wait for an outage to end).
func (p *Provisioner) persist(ctx context.Context, f func(context.Context) error) error {
	patience := p.opts.Lease / 2
	if ctx.Err() != nil {
		patience = min(patience, 2*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), patience)
	defer cancel()
	for {
		err := f(ctx)
		if err == nil || !pgerr.IsUnavailable(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// fail records a failed attempt (the attempts-th): retried after a
// backoff, FAILED once MaxAttempts is reached; a move not yet switched is
// undone then (move_abort, with a fresh count of attempts). Other jobs (a
// DELETING tenant, a switched move's clean-up, an undo) are retried for
// ever, their backoff capped at five minutes.
func (p *Provisioner) fail(ctx context.Context, j job, attempts int, cause error) error {
	backoff := min(p.opts.BaseBackoff<<min(max(attempts-1, 0), 10), 5*time.Minute)
	backoff += time.Duration(rand.Int64N(int64(backoff)/4 + 1)) // jitter: workers of many processes spread out
	msg := fmt.Sprintf("%s (attempt %d of %d)", publicError(cause), attempts, p.opts.MaxAttempts)
	const q = `UPDATE tenants SET last_error = $4,
			attempts = CASE WHEN status = 'MOVING' AND NOT move_switched AND NOT move_abort AND $3::int >= $5::int
				THEN 0 ELSE $3::int END,
			move_abort = move_abort OR (status = 'MOVING' AND NOT move_switched AND $3::int >= $5::int),
			status = CASE WHEN status = 'PROVISIONING' AND $3::int >= $5::int THEN 'FAILED' ELSE status END,
			next_attempt_at = now() + $6 * interval '1 millisecond',
			lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
		WHERE id = $1 AND lease_owner = $2`
	err := p.persist(ctx, func(ctx context.Context) error {
		_, err := p.control.ExecContext(ctx, q, j.ID, p.me, attempts, msg, p.opts.MaxAttempts, backoff.Milliseconds())
		return err
	})
	if err != nil {
		return dbError("record failure", err)
	}
	_, _ = p.reg.refresh(context.WithoutCancel(ctx), j.ID)
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
	case pgerr.IsUnavailable(err):
		return fmt.Sprintf("%s failed: database unavailable", step)
	case errors.As(err, &pqErr):
		return fmt.Sprintf("%s failed: database error %s", step, pqErr.Code.Name())
	case errors.Is(err, errFailpoint):
		return fmt.Sprintf("%s failed: injected fault", step)
	case errors.Is(err, errPrivilegedRole):
		return fmt.Sprintf("%s failed: %v", step, errPrivilegedRole)
	case errors.Is(err, errInterrupted):
		return fmt.Sprintf("%s %s", step, errInterrupted)
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
