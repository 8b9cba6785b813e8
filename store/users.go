package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tenantql/tenantql/pgerr"
)

// Role is what a user may do in the organization.
type Role string

// The roles of a user.
const (
	RoleOwner  Role = "OWNER"
	RoleAdmin  Role = "ADMIN"
	RoleMember Role = "MEMBER"
)

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	return r == RoleOwner || r == RoleAdmin || r == RoleMember
}

// User is a member of the organization.
type User struct {
	ID           uuid.UUID `db:"id"`
	Email        string    `db:"email"` // as given at creation, trimmed
	Name         string    `db:"name"`
	Role         Role      `db:"role"`
	PasswordHash string    `db:"password_hash"` // made by the caller; never shown to clients
	CreatedAt    time.Time `db:"created_at"`
	// TokenGeneration is the generation of the user's valid tokens: a
	// token issued in an older one is revoked. RevokeTokens and
	// SetPassword move it on, and so does any change of the email, role
	// or password hash made in SQL (a trigger, tenant migration 0003).
	TokenGeneration int64 `db:"token_generation"`
}

func (u *User) normalize() { u.CreatedAt = u.CreatedAt.UTC() }

func userKey(u User) (time.Time, uuid.UUID) { return u.CreatedAt, u.ID }

// NewUser is what CreateUser and EnsureOwner need.
type NewUser struct {
	Email        string // trimmed, then checked; unique case-insensitively
	Name         string // trimmed, then 1 to 100 bytes
	Role         Role   // required by CreateUser; EnsureOwner accepts only "" or RoleOwner
	PasswordHash string // already hashed by the caller; 1 to 1024 bytes
}

// check validates and normalizes nu in place.
func (nu *NewUser) check() error {
	var err error
	if nu.Email, err = normalizeEmail(nu.Email); err != nil {
		return err
	}
	if nu.Name, err = normalizeName("name", nu.Name); err != nil {
		return err
	}
	if !nu.Role.Valid() {
		return invalid("role must be OWNER, ADMIN or MEMBER")
	}
	return checkPasswordHash(nu.PasswordHash)
}

const userColumns = `id, email, name, role, password_hash, created_at, token_generation`

// CreateUser adds a user. Returns ErrInvalidInput if a field fails
// validation and ErrConflict if a user with the same email (compared
// case-insensitively) exists.
func (s *Store) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	if err := nu.check(); err != nil {
		return User{}, err
	}
	const q = `INSERT INTO users (id, email, name, role, password_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, clock_timestamp())
		RETURNING ` + userColumns
	var u User
	err := s.db.GetContext(ctx, &u, q, uuid.New(), nu.Email, nu.Name, string(nu.Role), nu.PasswordHash)
	if code, _ := pgerr.Constraint(err); code == "23505" {
		return User{}, fmt.Errorf("%w: a user with email %q already exists", ErrConflict, nu.Email)
	}
	if err != nil {
		return User{}, dbError("create user", err)
	}
	u.normalize()
	return u, nil
}

// EnsureOwner creates an OWNER user from nu unless a user with that email
// (case-insensitively) exists, in which case it returns that user as it is
// (whatever its role, name and hash). It is idempotent, for provisioning
// retries, and safe against concurrent calls. nu.Role must be "" or
// RoleOwner. Returns ErrInvalidInput if a field fails validation.
func (s *Store) EnsureOwner(ctx context.Context, nu NewUser) (User, error) {
	if nu.Role == "" {
		nu.Role = RoleOwner
	}
	if nu.Role != RoleOwner {
		return User{}, invalid("role of the owner must be OWNER")
	}
	if err := nu.check(); err != nil {
		return User{}, err
	}
	const q = `INSERT INTO users (id, email, name, role, password_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, clock_timestamp())
		ON CONFLICT ((lower(email))) DO NOTHING
		RETURNING ` + userColumns
	var u User
	err := s.db.GetContext(ctx, &u, q, uuid.New(), nu.Email, nu.Name, string(nu.Role), nu.PasswordHash)
	if errors.Is(err, sql.ErrNoRows) {
		return s.UserByEmail(ctx, nu.Email) // it exists: a committed row held the conflict
	}
	if err != nil {
		return User{}, dbError("ensure owner", err)
	}
	u.normalize()
	return u, nil
}

// UserByEmail returns the user with that email, compared trimmed and
// case-insensitively. Returns ErrNotFound if there is none, including for
// strings that are not valid emails (no user can have them).
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return User{}, fmt.Errorf("user: %w", ErrNotFound)
	}
	const q = `SELECT ` + userColumns + ` FROM users WHERE lower(email) = lower($1)`
	var u User
	err = s.db.GetContext(ctx, &u, q, email)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user: %w", ErrNotFound)
	}
	if err != nil {
		return User{}, dbError("user by email", err)
	}
	u.normalize()
	return u, nil
}

// UserByID returns the user with id. Returns ErrNotFound if there is none.
func (s *Store) UserByID(ctx context.Context, id uuid.UUID) (User, error) {
	const q = `SELECT ` + userColumns + ` FROM users WHERE id = $1`
	var u User
	err := s.db.GetContext(ctx, &u, q, id)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, dbError("user by id", err)
	}
	u.normalize()
	return u, nil
}

// RevokeTokens moves the user's token generation on, so that every token
// issued to the user so far is refused, and returns the user as it is now.
// Returns ErrNotFound if there is no such user.
func (s *Store) RevokeTokens(ctx context.Context, id uuid.UUID) (User, error) {
	const q = `UPDATE users SET token_generation = token_generation + 1 WHERE id = $1 RETURNING ` + userColumns
	return s.updateUser(ctx, "revoke tokens", q, id)
}

// SetPassword replaces the user's password hash (made by the caller) and
// thereby revokes every token issued to the user so far; it returns the
// user as it is now, with its new token generation.
// Returns ErrInvalidInput for an empty or over-long hash and ErrNotFound
// if there is no such user.
func (s *Store) SetPassword(ctx context.Context, id uuid.UUID, passwordHash string) (User, error) {
	if err := checkPasswordHash(passwordHash); err != nil {
		return User{}, err
	}
	// the trigger moves token_generation on; saying it here as well keeps
	// the revocation independent of the trigger
	const q = `UPDATE users SET password_hash = $2, token_generation = token_generation + 1
		WHERE id = $1 RETURNING ` + userColumns
	return s.updateUser(ctx, "set password", q, id, passwordHash)
}

// updateUser runs q, an UPDATE of the user with id $1 returning userColumns.
func (s *Store) updateUser(ctx context.Context, what, q string, id uuid.UUID, args ...any) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, q, append([]any{id}, args...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, dbError(what, err)
	}
	u.normalize()
	return u, nil
}

// UsersByIDs returns the users with the given ids in one query, keyed by
// id, for dataloaders. Ids without a user are absent from the map (no
// error); duplicates are fine. An empty ids gives an empty map without a query.
func (s *Store) UsersByIDs(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]User, error) {
	out := make(map[uuid.UUID]User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	const q = `SELECT ` + userColumns + ` FROM users WHERE id = ANY($1::uuid[])`
	var rows []User
	if err := s.db.SelectContext(ctx, &rows, q, uuidArray(ids)); err != nil {
		return nil, dbError("users by ids", err)
	}
	for _, u := range rows {
		u.normalize()
		out[u.ID] = u
	}
	return out, nil
}

// ListUsers returns a page of the users, oldest first.
// Returns ErrInvalidInput for a First outside 1..100 or a bad After.
func (s *Store) ListUsers(ctx context.Context, args PageArgs) (Page[User], error) {
	ks, err := args.parse()
	if err != nil {
		return Page[User]{}, err
	}
	at, id := ks.args()
	const q = `SELECT ` + userColumns + ` FROM users
		WHERE ($1::timestamptz IS NULL OR (created_at, id) > ($1, $2::uuid))
		ORDER BY created_at, id LIMIT $3`
	const qCount = `SELECT count(*) FROM users`
	var rows []User
	var total int
	err = s.inTx(ctx, "list users", snapshot(), func(tx *sqlx.Tx) error {
		if err := tx.SelectContext(ctx, &rows, q, at, id, args.First+1); err != nil {
			return dbError("list users", err)
		}
		return dbError("count users", tx.GetContext(ctx, &total, qCount))
	})
	if err != nil {
		return Page[User]{}, err
	}
	for i := range rows {
		rows[i].normalize()
	}
	return newPage(rows, args.First, total, userKey), nil
}

// uuidArray returns ids as a parameter for a $n::uuid[] placeholder.
func uuidArray(ids []uuid.UUID) pq.StringArray {
	a := make(pq.StringArray, len(ids))
	for i, id := range ids {
		a[i] = id.String()
	}
	return a
}
