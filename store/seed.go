package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// seedLockKey is the transaction-level advisory lock that serializes
// SeedDemo calls on one database.
const seedLockKey = 0x7465_6e61_6e74_716c // "tenantql"

// SeedDemo fills the database with demo data for the owner ownerID: four
// more users at the owner's email domain (all with passwordHash, so the
// operator knows their password), the projects WEB "Website" and API
// "Public API", 40 issues in every status, assigned to various users or
// to nobody, and 60 comments, dated over the last six weeks. The content
// is always the same.
//
// It is idempotent: it does nothing if any project exists, and concurrent
// calls are serialized. Everything happens in one transaction. A demo user
// whose email is already taken is reused as it is. Returns ErrNotFound if
// the owner does not exist and ErrInvalidInput for an invalid passwordHash.
func (s *Store) SeedDemo(ctx context.Context, ownerID uuid.UUID, passwordHash string) error {
	if err := checkPasswordHash(passwordHash); err != nil {
		return err
	}
	return s.inTx(ctx, "seed demo", nil, func(tx *sqlx.Tx) error {
		const qLock = `SELECT pg_advisory_xact_lock($1)`
		if _, err := tx.ExecContext(ctx, qLock, int64(seedLockKey)); err != nil {
			return dbError("seed demo: lock", err)
		}
		const qSeeded = `SELECT EXISTS (SELECT 1 FROM projects)`
		var seeded bool
		if err := tx.GetContext(ctx, &seeded, qSeeded); err != nil {
			return dbError("seed demo: check", err)
		}
		if seeded {
			return nil
		}
		const qOwner = `SELECT email, now() FROM users WHERE id = $1`
		var ownerEmail string
		var now time.Time
		err := tx.QueryRowxContext(ctx, qOwner, ownerID).Scan(&ownerEmail, &now)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("owner %s: %w", ownerID, ErrNotFound)
		}
		if err != nil {
			return dbError("seed demo: owner", err)
		}
		sd := seeder{tx: tx, start: now.Add(-45 * 24 * time.Hour)}
		userIDs, err := sd.users(ctx, ownerID, ownerEmail[strings.LastIndexByte(ownerEmail, '@')+1:], passwordHash)
		if err != nil {
			return err
		}
		return sd.projectsAndIssues(ctx, userIDs)
	})
}

// seeder writes the demo data in one transaction; start is the time of
// its oldest rows.
type seeder struct {
	tx    *sqlx.Tx
	start time.Time
}

// users inserts the demo users and returns the ids of the owner and of
// them, in the order of demoUsers (the owner first).
func (sd seeder) users(ctx context.Context, ownerID uuid.UUID, domain, passwordHash string) ([]uuid.UUID, error) {
	const qInsert = `INSERT INTO users (id, email, name, role, password_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT ((lower(email))) DO NOTHING`
	const qID = `SELECT id FROM users WHERE lower(email) = lower($1)`
	ids := []uuid.UUID{ownerID}
	for i, u := range demoUsers() {
		email := u.local + "@" + domain
		created := sd.start.Add(time.Duration(i) * time.Hour)
		_, err := sd.tx.ExecContext(ctx, qInsert, uuid.New(), email, u.name, string(u.role), passwordHash, created)
		if err != nil {
			return nil, dbError("seed demo: user", err)
		}
		var id uuid.UUID
		if err := sd.tx.GetContext(ctx, &id, qID, email); err != nil {
			return nil, dbError("seed demo: user id", err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// projectsAndIssues inserts the demo projects, their issues (numbered in
// order of creation) and the issues' comments.
func (sd seeder) projectsAndIssues(ctx context.Context, userIDs []uuid.UUID) error {
	const qProject = `INSERT INTO projects (id, key, name, created_at) VALUES ($1, $2, $3, $4)`
	const qNumbers = `UPDATE projects SET last_number = $2 WHERE id = $1`
	const qIssue = `INSERT INTO issues (id, project_id, number, title, description, status,
			assignee_id, reporter_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	const qComment = `INSERT INTO comments (id, issue_id, author_id, body, created_at)
		VALUES ($1, $2, $3, $4, $5)`

	projectIDs := map[string]uuid.UUID{}
	numbers := map[string]int{}
	for i, p := range demoProjects() {
		id := uuid.New()
		created := sd.start.Add(24*time.Hour + time.Duration(i)*time.Hour)
		if _, err := sd.tx.ExecContext(ctx, qProject, id, p.key, p.name, created); err != nil {
			return dbError("seed demo: project", err)
		}
		projectIDs[p.key] = id
	}
	for k, is := range demoIssues() {
		numbers[is.project]++
		id := uuid.New()
		created := sd.start.Add(5*24*time.Hour + time.Duration(k)*22*time.Hour +
			time.Duration(k*37%180)*time.Minute)
		updated := created
		switch is.status {
		case StatusInProgress:
			updated = created.Add(6 * time.Hour)
		case StatusDone:
			updated = created.Add(30 * time.Hour)
		}
		var assignee any
		if is.assignee != uNone {
			assignee = userIDs[is.assignee]
		}
		_, err := sd.tx.ExecContext(ctx, qIssue, id, projectIDs[is.project], numbers[is.project],
			is.title, is.description, string(is.status), assignee, userIDs[is.reporter], created, updated)
		if err != nil {
			return dbError("seed demo: issue", err)
		}
		for j, c := range is.comments {
			at := created.Add(time.Duration(j+1)*5*time.Hour + time.Duration(k*7%60)*time.Minute)
			if _, err := sd.tx.ExecContext(ctx, qComment, uuid.New(), id, userIDs[c.author], c.body, at); err != nil {
				return dbError("seed demo: comment", err)
			}
		}
	}
	for key, n := range numbers {
		if _, err := sd.tx.ExecContext(ctx, qNumbers, projectIDs[key], n); err != nil {
			return dbError("seed demo: numbers", err)
		}
	}
	return nil
}
