package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/pgerr"
)

// IssueStatus is where an issue stands.
type IssueStatus string

// The statuses of an issue.
const (
	StatusTodo       IssueStatus = "TODO"
	StatusInProgress IssueStatus = "IN_PROGRESS"
	StatusDone       IssueStatus = "DONE"
)

// Valid reports whether st is one of the defined statuses.
func (st IssueStatus) Valid() bool {
	return st == StatusTodo || st == StatusInProgress || st == StatusDone
}

// Issue is a unit of work in a project, known to people by its key ("WEB-12").
type Issue struct {
	ID          uuid.UUID   `db:"id"`
	ProjectID   uuid.UUID   `db:"project_id"`
	ProjectKey  string      `db:"project_key"`
	Number      int         `db:"number"` // 1, 2, ... per project, without gaps
	Title       string      `db:"title"`
	Description string      `db:"description"`
	Status      IssueStatus `db:"status"`
	AssigneeID  *uuid.UUID  `db:"assignee_id"` // nil: unassigned
	ReporterID  uuid.UUID   `db:"reporter_id"`
	CreatedAt   time.Time   `db:"created_at"`
	UpdatedAt   time.Time   `db:"updated_at"`
	// Assignee and Reporter are the users themselves (without password
	// hash), filled only by ListIssues when PageArgs asks for them; nil
	// otherwise, and Assignee nil for an unassigned issue.
	Assignee *User `db:"-"`
	Reporter *User `db:"-"`
}

// Key returns the issue's key, "<project key>-<number>", e.g. "WEB-12".
func (i Issue) Key() string {
	return i.ProjectKey + "-" + strconv.Itoa(i.Number)
}

func (i *Issue) normalize() {
	i.CreatedAt, i.UpdatedAt = i.CreatedAt.UTC(), i.UpdatedAt.UTC()
}

func issueKey(i Issue) (time.Time, uuid.UUID) { return i.CreatedAt, i.ID }

// parseIssueKey splits "WEB-12" into its project key and number. ok is
// false unless s is exactly a valid project key, "-" and a positive
// decimal number without leading zeros that fits an int32.
func parseIssueKey(s string) (project string, number int, ok bool) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return "", 0, false
	}
	project, digits := s[:i], s[i+1:]
	if !validProjectKey(project) || digits == "" || digits[0] == '0' {
		return "", 0, false
	}
	for j := 0; j < len(digits); j++ {
		if digits[j] < '0' || digits[j] > '9' {
			return "", 0, false
		}
	}
	n, err := strconv.ParseInt(digits, 10, 32)
	if err != nil {
		return "", 0, false
	}
	return project, int(n), true
}

// issueNotFound is the error of a lookup by key.
func issueNotFound(key string) error {
	return fmt.Errorf("issue %q: %w", printable(key), ErrNotFound)
}

// issueColumns reads an issue from issues i joined with projects p.
const issueColumns = `i.id, i.project_id, p.key AS project_key, i.number, i.title, i.description,
	i.status, i.assignee_id, i.reporter_id, i.created_at, i.updated_at`

// NewIssue is what CreateIssue needs.
type NewIssue struct {
	ProjectKey  string      // an existing project's key
	Title       string      // trimmed, then 1 to 200 bytes, one line
	Description string      // at most 20000 bytes, kept as given; may be empty
	Status      IssueStatus // "" means StatusTodo
	AssigneeID  *uuid.UUID  // nil: unassigned; else an existing user
	ReporterID  uuid.UUID   // an existing user, required
}

// CreateIssue adds an issue to a project with the project's next number:
// numbers are handed out in the same transaction as the insert, so they
// have no gaps even under concurrent creates. It notifies
// IssueChangedChannel with the new issue's id on commit.
//
// Returns ErrNotFound if the project does not exist (or its key is
// malformed), and ErrInvalidInput if a field fails validation or if the
// assignee or reporter is not an existing user (a dangling reference is a
// bad input, not a missing issue).
func (s *Store) CreateIssue(ctx context.Context, ni NewIssue) (Issue, error) {
	if !validProjectKey(ni.ProjectKey) {
		return Issue{}, fmt.Errorf("project %q: %w", printable(ni.ProjectKey), ErrNotFound)
	}
	title, err := normalizeTitle(ni.Title)
	if err != nil {
		return Issue{}, err
	}
	if err := checkDescription(ni.Description); err != nil {
		return Issue{}, err
	}
	if ni.Status == "" {
		ni.Status = StatusTodo
	}
	if !ni.Status.Valid() {
		return Issue{}, invalid("status must be TODO, IN_PROGRESS or DONE")
	}
	if ni.ReporterID == uuid.Nil {
		return Issue{}, invalid("reporter is required")
	}
	if ni.AssigneeID != nil && *ni.AssigneeID == uuid.Nil {
		return Issue{}, invalid("assignee does not exist")
	}

	const qNumber = `UPDATE projects SET last_number = last_number + 1 WHERE key = $1
		RETURNING id, last_number`
	const qInsert = `INSERT INTO issues (id, project_id, number, title, description, status,
			assignee_id, reporter_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, clock_timestamp(), clock_timestamp())
		RETURNING id, project_id, number, title, description, status, assignee_id, reporter_id,
			created_at, updated_at`
	var is Issue
	err = s.inTx(ctx, "create issue", nil, func(tx *sqlx.Tx) error {
		var project struct {
			ID     uuid.UUID `db:"id"`
			Number int       `db:"last_number"`
		}
		err := tx.GetContext(ctx, &project, qNumber, ni.ProjectKey)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("project %q: %w", ni.ProjectKey, ErrNotFound)
		}
		if err != nil {
			return dbError("create issue: next number", err)
		}
		err = tx.GetContext(ctx, &is, qInsert, uuid.New(), project.ID, project.Number,
			title, ni.Description, string(ni.Status), nullableUUID(ni.AssigneeID), ni.ReporterID)
		if err != nil {
			return issueWriteError("create issue", err)
		}
		is.ProjectKey = ni.ProjectKey
		return notifyIssueChanged(ctx, tx, is.ID)
	})
	if err != nil {
		return Issue{}, err
	}
	is.normalize()
	return is, nil
}

// issueWriteError maps the driver error of an issue insert or update:
// a dangling assignee or reporter becomes ErrInvalidInput.
func issueWriteError(op string, err error) error {
	switch code, constraint := pgerr.Constraint(err); {
	case code == "23503" && constraint == "issues_assignee_id_fkey":
		return invalid("assignee does not exist")
	case code == "23503" && constraint == "issues_reporter_id_fkey":
		return invalid("reporter does not exist")
	}
	return dbError(op, err)
}

// nullableUUID returns id as a query parameter: NULL for nil.
func nullableUUID(id *uuid.UUID) any {
	if id == nil {
		return nil
	}
	return *id
}

// IssueByKey returns the issue with key, such as "WEB-12". Returns
// ErrNotFound if there is none, including for malformed keys.
func (s *Store) IssueByKey(ctx context.Context, key string) (Issue, error) {
	project, number, ok := parseIssueKey(key)
	if !ok {
		return Issue{}, issueNotFound(key)
	}
	const q = `SELECT ` + issueColumns + ` FROM issues i JOIN projects p ON p.id = i.project_id
		WHERE p.key = $1 AND i.number = $2`
	var is Issue
	err := s.db.GetContext(ctx, &is, q, project, number)
	if errors.Is(err, sql.ErrNoRows) {
		return Issue{}, issueNotFound(key)
	}
	if err != nil {
		return Issue{}, dbError("issue by key", err)
	}
	is.normalize()
	return is, nil
}

// IssueByID returns the issue with id, e.g. one named by a notification on
// IssueChangedChannel. Returns ErrNotFound if there is none.
func (s *Store) IssueByID(ctx context.Context, id uuid.UUID) (Issue, error) {
	const q = `SELECT ` + issueColumns + ` FROM issues i JOIN projects p ON p.id = i.project_id
		WHERE i.id = $1`
	var is Issue
	err := s.db.GetContext(ctx, &is, q, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Issue{}, fmt.Errorf("issue %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Issue{}, dbError("issue by id", err)
	}
	is.normalize()
	return is, nil
}

// IssuePatch lists the changes UpdateIssue makes; nil fields stay as they are.
type IssuePatch struct {
	Title       *string      // trimmed, then 1 to 200 bytes, one line
	Description *string      // at most 20000 bytes, kept as given
	Status      *IssueStatus // one of the defined statuses
	AssigneeID  *uuid.UUID   // assign to this existing user
	// ClearAssignee unassigns the issue; it cannot be combined with AssigneeID.
	ClearAssignee bool
}

// empty reports whether the patch changes nothing.
func (p IssuePatch) empty() bool {
	return p.Title == nil && p.Description == nil && p.Status == nil && p.AssigneeID == nil && !p.ClearAssignee
}

// UpdateIssue applies patch to the issue with key, sets its updated_at to
// now and notifies IssueChangedChannel with its id on commit. An empty
// patch changes nothing (updated_at stays, no notification) and returns the
// issue as it is.
//
// Returns ErrNotFound if there is no such issue (or the key is malformed)
// and ErrInvalidInput if a field fails validation, AssigneeID is combined
// with ClearAssignee, or the assignee is not an existing user.
func (s *Store) UpdateIssue(ctx context.Context, key string, patch IssuePatch) (Issue, error) {
	project, number, ok := parseIssueKey(key)
	if !ok {
		return Issue{}, issueNotFound(key)
	}
	var title, description, status, assignee any
	if patch.Title != nil {
		t, err := normalizeTitle(*patch.Title)
		if err != nil {
			return Issue{}, err
		}
		title = t
	}
	if patch.Description != nil {
		if err := checkDescription(*patch.Description); err != nil {
			return Issue{}, err
		}
		description = *patch.Description
	}
	if patch.Status != nil {
		if !patch.Status.Valid() {
			return Issue{}, invalid("status must be TODO, IN_PROGRESS or DONE")
		}
		status = string(*patch.Status)
	}
	if patch.AssigneeID != nil {
		if patch.ClearAssignee {
			return Issue{}, invalid("assignee cannot be both set and cleared")
		}
		if *patch.AssigneeID == uuid.Nil {
			return Issue{}, invalid("assignee does not exist")
		}
		assignee = *patch.AssigneeID
	}
	if patch.empty() {
		return s.IssueByKey(ctx, key)
	}

	const q = `UPDATE issues i SET
			title = COALESCE($3::text, i.title),
			description = COALESCE($4::text, i.description),
			status = COALESCE($5::text, i.status),
			assignee_id = CASE WHEN $7::boolean THEN NULL ELSE COALESCE($6::uuid, i.assignee_id) END,
			updated_at = clock_timestamp()
		FROM projects p
		WHERE p.key = $1 AND i.project_id = p.id AND i.number = $2
		RETURNING ` + issueColumns
	var is Issue
	err := s.inTx(ctx, "update issue", nil, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &is, q, project, number, title, description, status, assignee, patch.ClearAssignee)
		if errors.Is(err, sql.ErrNoRows) {
			return issueNotFound(key)
		}
		if err != nil {
			return issueWriteError("update issue", err)
		}
		return notifyIssueChanged(ctx, tx, is.ID)
	})
	if err != nil {
		return Issue{}, err
	}
	is.normalize()
	return is, nil
}

// DeleteIssue deletes the issue with key and its comments. The project's
// numbers are not reused. No notification is sent. Returns ErrNotFound if
// there is no such issue (or the key is malformed).
func (s *Store) DeleteIssue(ctx context.Context, key string) error {
	project, number, ok := parseIssueKey(key)
	if !ok {
		return issueNotFound(key)
	}
	const q = `DELETE FROM issues i USING projects p
		WHERE p.key = $1 AND i.project_id = p.id AND i.number = $2`
	res, err := s.db.ExecContext(ctx, q, project, number)
	if err != nil {
		return dbError("delete issue", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError("delete issue", err)
	}
	if n == 0 {
		return issueNotFound(key)
	}
	return nil
}

// IssueFilter narrows ListIssues; nil fields do not filter, set fields
// must all match.
type IssueFilter struct {
	// ProjectKey keeps the issues of that project. An unknown or malformed
	// key gives an empty page, not an error.
	ProjectKey *string
	// ProjectID keeps the issues of that project.
	ProjectID *uuid.UUID
	// Status keeps the issues in that status.
	Status *IssueStatus
	// AssigneeID keeps the issues assigned to that user.
	AssigneeID *uuid.UUID
}

// ListIssues returns a page of the issues that match filter, newest first
// (by creation time, then id). TotalCount counts all issues that match.
// Returns ErrInvalidInput for a First outside 1..100, a bad After or an
// unknown Status.
func (s *Store) ListIssues(ctx context.Context, filter IssueFilter, args PageArgs) (Page[Issue], error) {
	ks, err := args.parse()
	if err != nil {
		return Page[Issue]{}, err
	}
	var status, projectKey any
	if filter.Status != nil {
		if !filter.Status.Valid() {
			return Page[Issue]{}, invalid("status must be TODO, IN_PROGRESS or DONE")
		}
		status = string(*filter.Status)
	}
	if filter.ProjectKey != nil {
		if !validProjectKey(*filter.ProjectKey) {
			return newPage[Issue](nil, args.First, 0, issueKey), nil
		}
		projectKey = *filter.ProjectKey
	}
	// the page: a statement with exactly the conditions that apply
	kind, params := 0, make([]any, 0, 7)
	if filter.ProjectID != nil {
		kind, params = kind|byProjectID, append(params, *filter.ProjectID)
	}
	if projectKey != nil {
		kind, params = kind|byProjectKey, append(params, projectKey)
	}
	if status != nil {
		kind, params = kind|byStatus, append(params, status)
	}
	if filter.AssigneeID != nil {
		kind, params = kind|byAssignee, append(params, *filter.AssigneeID)
	}
	if ks.set {
		kind, params = kind|afterCursor, append(params, ks.createdAt, ks.id)
	}
	if args.JoinAssignee {
		kind |= withAssignee
	}
	if args.JoinReporter {
		kind |= withReporter
	}
	if args.SkipProjectKey {
		kind |= noProjectKey
	}
	if args.SkipDescription {
		kind |= noDescription
	}
	q := pageStatement(kind, args.First+1)
	var rows []Issue
	var total int
	if args.SkipCount {
		// one statement: no snapshot needed to agree with a count
		if rows, err = scanIssues(ctx, s.db, args, q, params); err != nil {
			return Page[Issue]{}, dbError("list issues", err)
		}
		return newPage(rows, args.First, 0, issueKey), nil
	}
	err = s.inTx(ctx, "list issues", snapshot(), func(tx *sqlx.Tx) error {
		if rows, err = scanIssues(ctx, tx, args, q, params); err != nil {
			return dbError("list issues", err)
		}
		return dbError("count issues", tx.GetContext(ctx, &total, qCountIssues,
			nullableUUID(filter.ProjectID), projectKey, status, nullableUUID(filter.AssigneeID)))
	})
	if err != nil {
		return Page[Issue]{}, err
	}
	return newPage(rows, args.First, total, issueKey), nil
}

// qCountIssues counts the issues of a ListIssues filter: $1 project id,
// $2 project key, $3 status, $4 assignee id, each NULL for "any".
const qCountIssues = `SELECT count(*) FROM issues i WHERE ($1::uuid IS NULL OR i.project_id = $1)
	AND ($2::text IS NULL OR i.project_id = (SELECT id FROM projects WHERE key = $2))
	AND ($3::text IS NULL OR i.status = $3)
	AND ($4::uuid IS NULL OR i.assignee_id = $4)`

// What a page of issues is read with: the bits of a page statement's kind.
const (
	byProjectID   = 1 << iota // $n project id
	byProjectKey              // $n project key
	byStatus                  // $n status
	byAssignee                // $n assignee id
	afterCursor               // $n, $n+1: the keyset of the previous page's last row
	withAssignee              // the assignee's columns joined in
	withReporter              // the reporter's columns joined in
	noProjectKey              // project_key read as '' (no projects joined)
	noDescription             // description read as ''
)

// The page statements of ListIssues: one per kind and page size (the
// limit is written into the text), each built on first use and kept, up
// to maxPageStatements (beyond, a client trying every filter and page
// size, a statement is built for its request and not kept prepared). Each
// holds only the conditions that
// apply, as index conditions rather than "$n IS NULL OR ...": its plan is
// then good for any parameters, so that a connection may keep it prepared
// (Preparable) and PostgreSQL plan it once. The limit is a literal because
// PostgreSQL costs a generic plan's "LIMIT $n" as 10 % of the rows: that
// plan then looks dearer than a custom one, and a statement that PostgreSQL
// never switches to its generic plan is planned again at every run.
var (
	pageStatements     sync.Map // pageKey -> statement text
	preparable         sync.Map // statement text -> true
	pageStatementsKept atomic.Int32
)

const maxPageStatements = 2048

type pageKey struct{ kind, limit int }

// pageStatement returns the page statement of kind reading limit rows.
func pageStatement(kind, limit int) string {
	k := pageKey{kind, limit}
	if q, ok := pageStatements.Load(k); ok {
		return q.(string)
	}
	q := issuesStatement(kind, limit)
	if pageStatementsKept.Add(1) > maxPageStatements {
		pageStatementsKept.Add(-1)
		return q
	}
	preparable.Store(q, true) // before anyone runs it
	if q2, loaded := pageStatements.LoadOrStore(k, q); loaded {
		pageStatementsKept.Add(-1) // built by another request meanwhile
		return q2.(string)
	}
	return q
}

// issuesStatement builds the page statement of kind: the conditions in
// the order of their bits, numbered from $1, then the limit.
func issuesStatement(kind, limit int) string {
	n := 0
	arg := func(typ string) string { n++; return "$" + strconv.Itoa(n) + "::" + typ }
	var conds []string
	if kind&byProjectID != 0 {
		conds = append(conds, "i.project_id = "+arg("uuid"))
	}
	if kind&byProjectKey != 0 {
		conds = append(conds, "i.project_id = (SELECT id FROM projects WHERE key = "+arg("text")+")")
	}
	if kind&byStatus != 0 {
		conds = append(conds, "i.status = "+arg("text"))
	}
	if kind&byAssignee != 0 {
		conds = append(conds, "i.assignee_id = "+arg("uuid"))
	}
	if kind&afterCursor != 0 {
		at := arg("timestamptz")
		conds = append(conds, "(i.created_at, i.id) < ("+at+", "+arg("uuid")+")")
	}
	// the columns are always the same, for scanIssues: those the caller
	// does not need are read as '', which spares the projects join or the
	// description's bytes
	cols, joins := issueColumns, " JOIN projects p ON p.id = i.project_id"
	if kind&noProjectKey != 0 {
		cols, joins = strings.Replace(cols, "p.key AS project_key", "'' AS project_key", 1), ""
	}
	if kind&noDescription != 0 {
		cols = strings.Replace(cols, "i.description", "'' AS description", 1)
	}
	if kind&withAssignee != 0 {
		cols += ", " + joinedUserColumns("a")
		joins += " LEFT JOIN users a ON a.id = i.assignee_id"
	}
	if kind&withReporter != 0 {
		// LEFT: a reporter row gone behind the API's back leaves Reporter
		// nil, and the resolver reports it as it would without the join
		cols += ", " + joinedUserColumns("r")
		joins += " LEFT JOIN users r ON r.id = i.reporter_id"
	}
	where := ""
	if len(conds) > 0 {
		where = "\n\tWHERE " + strings.Join(conds, " AND ")
	}
	return "SELECT " + cols + " FROM issues i" + joins + where +
		"\n\tORDER BY i.created_at DESC, i.id DESC LIMIT " + strconv.Itoa(limit)
}

// Preparable reports whether query is one of the store's statements that
// a connection may keep prepared and run again by name: the hottest of
// the request path (the pages of issues), whose plans suit any
// parameters. A statement with "$n IS NULL OR ..." conditions must not
// be kept prepared: PostgreSQL may switch a prepared statement to one
// generic plan after five runs, and that plan cannot use the index such
// a condition needs when its parameter is set.
func Preparable(query string) bool {
	_, ok := preparable.Load(query)
	return ok
}

// joinedUserColumns are the columns of a user joined as alias, read by
// nullUser.dest: every one but the password hash.
func joinedUserColumns(alias string) string {
	return strings.ReplaceAll(`u.id, u.email, u.name, u.role, u.created_at, u.token_generation`, "u.", alias+".")
}

// nullUser reads joinedUserColumns of an outer join: all NULL for none.
type nullUser struct {
	id   *uuid.UUID        // nil for none
	text [3]sql.NullString // email, name, role
	at   sql.NullTime
	gen  sql.NullInt64
}

func (n *nullUser) dest() []any {
	return []any{nullUUIDColumn{&n.id}, &n.text[0], &n.text[1], &n.text[2], &n.at, &n.gen}
}

// user returns the user read, or nil for none.
func (n *nullUser) user() *User {
	if n.id == nil {
		return nil
	}
	u := &User{ID: *n.id, Email: n.text[0].String, Name: n.text[1].String, Role: Role(n.text[2].String),
		CreatedAt: n.at.Time, TokenGeneration: n.gen.Int64}
	u.normalize()
	return u
}

// scanIssues runs a listIssuesQuery on db and reads its rows (at most
// First+1) by position, into one set of destinations: the page is the
// API's hottest read, and sqlx's reflection per row (sqlx.scanAll) was a
// tenth of the server's CPU in the bench's profile.
func scanIssues(ctx context.Context, db sqlx.QueryerContext, args PageArgs, q string, params []any) ([]Issue, error) {
	rs, err := db.QueryContext(ctx, q, params...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	issues := make([]Issue, 0, args.First+1) // one page: scanning never regrows it
	var is Issue
	var a, r nullUser
	dest := []any{uuidColumn{&is.ID}, uuidColumn{&is.ProjectID}, &is.ProjectKey, &is.Number, &is.Title, &is.Description,
		&is.Status, nullUUIDColumn{&is.AssigneeID}, uuidColumn{&is.ReporterID}, &is.CreatedAt, &is.UpdatedAt}
	if args.JoinAssignee {
		dest = append(dest, a.dest()...)
	}
	if args.JoinReporter {
		dest = append(dest, r.dest()...)
	}
	for rs.Next() {
		if err := rs.Scan(dest...); err != nil {
			return nil, err
		}
		if args.JoinAssignee {
			is.Assignee = a.user()
		}
		if args.JoinReporter {
			is.Reporter = r.user()
		}
		is.normalize()
		issues = append(issues, is)
	}
	return issues, rs.Err()
}

// uuidColumn scans a uuid column into *u. lib/pq hands a uuid over as 36
// bytes of text (for a prepared statement's binary result too), and
// uuid.UUID.Scan converts those to a string before parsing them: an
// allocation per column and row that uuid.ParseBytes does not make. On a
// page of 20 issues with their assignees that is about a hundred objects
// (BenchmarkIssuesPage, docs/performance.md).
type uuidColumn struct{ u *uuid.UUID }

func (c uuidColumn) Scan(src any) error {
	if b, ok := src.([]byte); ok && len(b) == 36 {
		u, err := uuid.ParseBytes(b)
		if err != nil {
			return fmt.Errorf("uuid column: %w", err)
		}
		*c.u = u
		return nil
	}
	return c.u.Scan(src)
}

// nullUUIDColumn scans a nullable uuid column as uuidColumn does: *p is
// nil for NULL, else a new uuid.
type nullUUIDColumn struct{ p **uuid.UUID }

func (c nullUUIDColumn) Scan(src any) error {
	if src == nil {
		*c.p = nil
		return nil
	}
	u := new(uuid.UUID)
	if err := (uuidColumn{u}).Scan(src); err != nil {
		return err
	}
	*c.p = u
	return nil
}
