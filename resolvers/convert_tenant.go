package resolvers

import (
	"github.com/google/uuid"

	"github.com/tenantql/tenantql/graph/model"
	"github.com/tenantql/tenantql/store"
)

// parseID reads a GraphQL ID argument that must be a UUID; anything else
// is BAD_USER_INPUT naming the field.
func parseID(field, id string) (uuid.UUID, error) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return uuid.Nil, badInput("%s must be an id returned by this API", field)
	}
	return u, nil
}

// issueModel turns a stored issue into its GraphQL shape; project,
// assignee, reporter and comments are resolved from the kept ids.
func issueModel(i store.Issue) *model.Issue {
	m := &model.Issue{
		ID: i.ID.String(), Number: i.Number, Title: i.Title, Description: i.Description,
		Status: model.IssueStatus(i.Status), CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt,
		ProjectID: i.ProjectID.String(), ReporterID: i.ReporterID.String(),
	}
	if i.ProjectKey != "" { // "" when the page was read without it (PageArgs.SkipProjectKey)
		m.Key = i.Key()
	}
	if i.AssigneeID != nil {
		m.AssigneeID = i.AssigneeID.String()
	}
	if i.Assignee != nil { // joined in by ListIssues
		m.Assignee = userModel(*i.Assignee)
	}
	if i.Reporter != nil {
		m.Reporter = userModel(*i.Reporter)
	}
	return m
}

func projectModel(p store.Project) *model.Project {
	return &model.Project{ID: p.ID.String(), Key: p.Key, Name: p.Name, CreatedAt: p.CreatedAt}
}

func commentModel(c store.Comment) *model.Comment {
	return &model.Comment{ID: c.ID.String(), Body: c.Body, CreatedAt: c.CreatedAt, AuthorID: c.AuthorID.String()}
}

// pageInfo describes a store page: whether more follows and the cursor of
// its last row (nil for an empty page).
func pageInfo[T any](p store.Page[T]) *model.PageInfo {
	info := &model.PageInfo{HasNextPage: p.HasNextPage}
	if n := len(p.Cursors); n > 0 {
		c := p.Cursors[n-1]
		info.EndCursor = &c
	}
	return info
}

// edges turns a page's rows into GraphQL edges: each row's node with its
// cursor.
func edges[T, N, E any](p store.Page[T], node func(T) N, edge func(cursor string, node N) E) []E {
	out := make([]E, len(p.Items))
	for i, item := range p.Items {
		out[i] = edge(p.Cursors[i], node(item))
	}
	return out
}

func userConnection(p store.Page[store.User]) *model.UserConnection {
	return &model.UserConnection{PageInfo: pageInfo(p), TotalCount: p.TotalCount,
		Edges: edges(p, userModel, func(c string, n *model.User) *model.UserEdge { return &model.UserEdge{Cursor: c, Node: n} })}
}

func projectConnection(p store.Page[store.Project]) *model.ProjectConnection {
	return &model.ProjectConnection{PageInfo: pageInfo(p), TotalCount: p.TotalCount,
		Edges: edges(p, projectModel, func(c string, n *model.Project) *model.ProjectEdge { return &model.ProjectEdge{Cursor: c, Node: n} })}
}

func issueConnection(p store.Page[store.Issue]) *model.IssueConnection {
	return &model.IssueConnection{PageInfo: pageInfo(p), TotalCount: p.TotalCount,
		Edges: edges(p, issueModel, func(c string, n *model.Issue) *model.IssueEdge { return &model.IssueEdge{Cursor: c, Node: n} })}
}

func commentConnection(p store.Page[store.Comment]) *model.CommentConnection {
	return &model.CommentConnection{PageInfo: pageInfo(p), TotalCount: p.TotalCount,
		Edges: edges(p, commentModel, func(c string, n *model.Comment) *model.CommentEdge { return &model.CommentEdge{Cursor: c, Node: n} })}
}
