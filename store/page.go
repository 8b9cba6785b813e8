package store

import (
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// MaxPageSize is the largest PageArgs.First accepted.
const MaxPageSize = 100

// PageArgs asks for one page of a list.
type PageArgs struct {
	// First is the page size, 1 to MaxPageSize.
	First int
	// After is the cursor of the last item of the previous page; "" for
	// the first page.
	After string
	// SkipCount leaves Page.TotalCount at 0 and saves the count query, for
	// callers that do not need it. ListIssues honours it.
	SkipCount bool
	// JoinAssignee and JoinReporter fill Issue.Assignee and Issue.Reporter
	// from the page's own statement, for callers that show them.
	// ListIssues honours them.
	JoinAssignee, JoinReporter bool
	// SkipProjectKey and SkipDescription leave Issue.ProjectKey and
	// Issue.Description empty, for callers that do not show them: the
	// page is then read without the projects table or the descriptions.
	// ListIssues honours them.
	SkipProjectKey, SkipDescription bool
}

// Page is one page of a list, in the list's order.
type Page[T any] struct {
	// Items are the page's rows.
	Items []T
	// Cursors holds the opaque cursor of each item (Cursors[i] is that of
	// Items[i]); pass the last one as PageArgs.After to get the next page.
	Cursors []string
	// HasNextPage tells whether more rows follow the last item.
	HasNextPage bool
	// TotalCount is the number of rows of the whole list (with its
	// filter), not only of this page.
	TotalCount int
}

// keyset is a decoded cursor: the position after which a page starts.
// The zero keyset (set false) means "from the beginning".
type keyset struct {
	set       bool
	createdAt time.Time
	id        uuid.UUID
}

// cursorLen is the size of a decoded cursor: created_at in microseconds
// since the Unix epoch (big-endian int64) and the row's uuid.
const cursorLen = 8 + 16

// encodeCursor returns the opaque cursor of the row (createdAt, id).
func encodeCursor(createdAt time.Time, id uuid.UUID) string {
	var b [cursorLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(createdAt.UnixMicro()))
	copy(b[8:], id[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// decodeCursor parses a cursor made by encodeCursor.
// Returns ErrInvalidInput if s is not one.
func decodeCursor(s string) (keyset, error) {
	bad := invalid("after is not a valid cursor")
	if len(s) != base64.RawURLEncoding.EncodedLen(cursorLen) { // also refuses ignored CR/LF
		return keyset{}, bad
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != cursorLen {
		return keyset{}, bad
	}
	t := time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC()
	if t.Year() < 1 || t.Year() > 9999 { // beyond what any row can hold
		return keyset{}, bad
	}
	id, _ := uuid.FromBytes(b[8:])
	return keyset{set: true, createdAt: t, id: id}, nil
}

// parse checks the page arguments and decodes the cursor.
// Returns ErrInvalidInput for First outside 1..MaxPageSize or a bad After.
func (a PageArgs) parse() (keyset, error) {
	if err := checkFirst(a.First); err != nil {
		return keyset{}, err
	}
	if a.After == "" {
		return keyset{}, nil
	}
	return decodeCursor(a.After)
}

// checkFirst refuses a page size outside 1..MaxPageSize.
func checkFirst(first int) error {
	if first < 1 || first > MaxPageSize {
		return invalid("first must be between 1 and %d", MaxPageSize)
	}
	return nil
}

// newPage builds a page from up to first+1 rows read in list order (the
// extra row only tells that there is a next page) and the list's total.
func newPage[T any](rows []T, first, total int, key func(T) (time.Time, uuid.UUID)) Page[T] {
	p := Page[T]{Items: rows, TotalCount: total}
	if len(rows) > first {
		p.Items, p.HasNextPage = rows[:first], true
	}
	if p.Items == nil {
		p.Items = []T{}
	}
	p.Cursors = make([]string, len(p.Items))
	for i, it := range p.Items {
		p.Cursors[i] = encodeCursor(key(it))
	}
	return p
}

// args returns the keyset as two query parameters (created_at, id), both
// NULL for the first page. Queries use them as
// ($n::timestamptz IS NULL OR (created_at, id) > ($n, $m::uuid)).
func (k keyset) args() (createdAt, id any) {
	if !k.set {
		return nil, nil
	}
	return k.createdAt, k.id
}
