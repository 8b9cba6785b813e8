package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tenantql/tenantql/pgerr"
)

// Comment is a remark a user made on an issue.
type Comment struct {
	ID        uuid.UUID `db:"id"`
	IssueID   uuid.UUID `db:"issue_id"`
	AuthorID  uuid.UUID `db:"author_id"`
	Body      string    `db:"body"`
	CreatedAt time.Time `db:"created_at"`
}

func (c *Comment) normalize() { c.CreatedAt = c.CreatedAt.UTC() }

func commentKey(c Comment) (time.Time, uuid.UUID) { return c.CreatedAt, c.ID }

const commentColumns = `id, issue_id, author_id, body, created_at`

// AddComment adds a comment by authorID to the issue with issueKey. body
// must be 1 to 10000 bytes and not blank; it is kept as given.
// Returns ErrNotFound if there is no such issue (or the key is malformed)
// and ErrInvalidInput if body fails validation or the author is not an
// existing user.
func (s *Store) AddComment(ctx context.Context, issueKey string, authorID uuid.UUID, body string) (Comment, error) {
	project, number, ok := parseIssueKey(issueKey)
	if !ok {
		return Comment{}, issueNotFound(issueKey)
	}
	if err := checkBody(body); err != nil {
		return Comment{}, err
	}
	if authorID == uuid.Nil {
		return Comment{}, invalid("author does not exist")
	}
	const q = `INSERT INTO comments (id, issue_id, author_id, body, created_at)
		SELECT $1, i.id, $2, $3, clock_timestamp()
		FROM issues i JOIN projects p ON p.id = i.project_id
		WHERE p.key = $4 AND i.number = $5
		RETURNING ` + commentColumns
	var c Comment
	err := s.db.GetContext(ctx, &c, q, uuid.New(), authorID, body, project, number)
	if errors.Is(err, sql.ErrNoRows) {
		return Comment{}, issueNotFound(issueKey)
	}
	if code, constraint := pgerr.Constraint(err); code == "23503" {
		if constraint == "comments_author_id_fkey" {
			return Comment{}, invalid("author does not exist")
		}
		// the issue was deleted between the SELECT and the insert
		return Comment{}, issueNotFound(issueKey)
	}
	if err != nil {
		return Comment{}, dbError("add comment", err)
	}
	c.normalize()
	return c, nil
}

// ListComments returns a page of the comments on the issue with issueID,
// oldest first. An unknown issue has no comments: the page is empty.
// Returns ErrInvalidInput for a First outside 1..100 or a bad After.
func (s *Store) ListComments(ctx context.Context, issueID uuid.UUID, args PageArgs) (Page[Comment], error) {
	ks, err := args.parse()
	if err != nil {
		return Page[Comment]{}, err
	}
	at, id := ks.args()
	const q = `SELECT ` + commentColumns + ` FROM comments
		WHERE issue_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
		ORDER BY created_at, id LIMIT $4`
	const qCount = `SELECT count(*) FROM comments WHERE issue_id = $1`
	var rows []Comment
	var total int
	err = s.inTx(ctx, "list comments", snapshot(), func(tx *sqlx.Tx) error {
		if err := tx.SelectContext(ctx, &rows, q, issueID, at, id, args.First+1); err != nil {
			return dbError("list comments", err)
		}
		return dbError("count comments", tx.GetContext(ctx, &total, qCount, issueID))
	})
	if err != nil {
		return Page[Comment]{}, err
	}
	for i := range rows {
		rows[i].normalize()
	}
	return newPage(rows, args.First, total, commentKey), nil
}

// CommentsForIssues returns, in one query, the first page (oldest first, no
// cursor) of first comments of each issue in issueIDs, with its TotalCount
// and HasNextPage, for dataloaders. Every id gets an entry; an issue
// without comments (or an unknown id) gets an empty page. The cursors are
// those ListComments takes to continue. Returns ErrInvalidInput for a
// first outside 1..100.
func (s *Store) CommentsForIssues(ctx context.Context, issueIDs []uuid.UUID, first int) (map[uuid.UUID]Page[Comment], error) {
	if err := checkFirst(first); err != nil {
		return nil, err
	}
	rowsByIssue := make(map[uuid.UUID][]Comment, len(issueIDs))
	totals := make(map[uuid.UUID]int, len(issueIDs))
	if len(issueIDs) > 0 {
		const q = `SELECT ` + commentColumns + `, total FROM (
				SELECT ` + commentColumns + `,
					row_number() OVER (PARTITION BY issue_id ORDER BY created_at, id) AS n,
					count(*) OVER (PARTITION BY issue_id) AS total
				FROM comments WHERE issue_id = ANY($1::uuid[])
			) c
			WHERE n <= $2
			ORDER BY issue_id, created_at, id`
		var rows []struct {
			Comment
			Total int `db:"total"`
		}
		if err := s.db.SelectContext(ctx, &rows, q, uuidArray(issueIDs), first); err != nil {
			return nil, dbError("comments for issues", err)
		}
		for _, r := range rows {
			r.Comment.normalize()
			rowsByIssue[r.IssueID] = append(rowsByIssue[r.IssueID], r.Comment)
			totals[r.IssueID] = r.Total
		}
	}
	out := make(map[uuid.UUID]Page[Comment], len(issueIDs))
	for _, id := range issueIDs {
		p := newPage(rowsByIssue[id], first, totals[id], commentKey)
		p.HasNextPage = totals[id] > len(p.Items)
		out[id] = p
	}
	return out, nil
}
