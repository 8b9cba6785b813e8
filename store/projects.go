package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/pgerr"
)

// Project groups issues under a short key such as "WEB".
type Project struct {
	ID        uuid.UUID `db:"id"`
	Key       string    `db:"key"` // ^[A-Z][A-Z0-9]{1,9}$, unique
	Name      string    `db:"name"`
	CreatedAt time.Time `db:"created_at"`
}

func (p *Project) normalize() { p.CreatedAt = p.CreatedAt.UTC() }

func projectKey(p Project) (time.Time, uuid.UUID) { return p.CreatedAt, p.ID }

const projectColumns = `id, key, name, created_at`

// CreateProject adds a project. key must match ^[A-Z][A-Z0-9]{1,9}$ as
// given (it is not upper-cased); name is trimmed, then 1 to 100 bytes.
// Returns ErrInvalidInput if either fails validation and ErrConflict if a
// project with that key exists.
func (s *Store) CreateProject(ctx context.Context, key, name string) (Project, error) {
	if err := checkProjectKey(key); err != nil {
		return Project{}, err
	}
	name, err := normalizeName("name", name)
	if err != nil {
		return Project{}, err
	}
	const q = `INSERT INTO projects (id, key, name, created_at)
		VALUES ($1, $2, $3, clock_timestamp())
		RETURNING ` + projectColumns
	var p Project
	err = s.db.GetContext(ctx, &p, q, uuid.New(), key, name)
	if code, _ := pgerr.Constraint(err); code == "23505" {
		return Project{}, fmt.Errorf("%w: a project with key %q already exists", ErrConflict, key)
	}
	if err != nil {
		return Project{}, dbError("create project", err)
	}
	p.normalize()
	return p, nil
}

// ProjectByKey returns the project with key. Returns ErrNotFound if there
// is none, including for malformed keys.
func (s *Store) ProjectByKey(ctx context.Context, key string) (Project, error) {
	notFound := fmt.Errorf("project %q: %w", printable(key), ErrNotFound)
	if !validProjectKey(key) {
		return Project{}, notFound
	}
	const q = `SELECT ` + projectColumns + ` FROM projects WHERE key = $1`
	var p Project
	err := s.db.GetContext(ctx, &p, q, key)
	if errors.Is(err, sql.ErrNoRows) {
		return Project{}, notFound
	}
	if err != nil {
		return Project{}, dbError("project by key", err)
	}
	p.normalize()
	return p, nil
}

// ProjectsByIDs returns the projects with the given ids in one query, keyed
// by id, for dataloaders. Ids without a project are absent from the map (no
// error). An empty ids gives an empty map without a query.
func (s *Store) ProjectsByIDs(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]Project, error) {
	out := make(map[uuid.UUID]Project, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	const q = `SELECT ` + projectColumns + ` FROM projects WHERE id = ANY($1::uuid[])`
	var rows []Project
	if err := s.db.SelectContext(ctx, &rows, q, uuidArray(ids)); err != nil {
		return nil, dbError("projects by ids", err)
	}
	for _, p := range rows {
		p.normalize()
		out[p.ID] = p
	}
	return out, nil
}

// ListProjects returns a page of the projects, oldest first.
// Returns ErrInvalidInput for a First outside 1..100 or a bad After.
func (s *Store) ListProjects(ctx context.Context, args PageArgs) (Page[Project], error) {
	ks, err := args.parse()
	if err != nil {
		return Page[Project]{}, err
	}
	at, id := ks.args()
	const q = `SELECT ` + projectColumns + ` FROM projects
		WHERE ($1::timestamptz IS NULL OR (created_at, id) > ($1, $2::uuid))
		ORDER BY created_at, id LIMIT $3`
	const qCount = `SELECT count(*) FROM projects`
	var rows []Project
	var total int
	err = s.inTx(ctx, "list projects", snapshot(), func(tx *sqlx.Tx) error {
		if err := tx.SelectContext(ctx, &rows, q, at, id, args.First+1); err != nil {
			return dbError("list projects", err)
		}
		return dbError("count projects", tx.GetContext(ctx, &total, qCount))
	})
	if err != nil {
		return Page[Project]{}, err
	}
	for i := range rows {
		rows[i].normalize()
	}
	return newPage(rows, args.First, total, projectKey), nil
}
