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
		ID: i.ID.String(), Key: i.Key(), Number: i.Number, Title: i.Title, Description: i.Description,
		Status: model.IssueStatus(i.Status), CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt,
		ProjectID: i.ProjectID.String(), ReporterID: i.ReporterID.String(),
	}
	if i.AssigneeID != nil {
		m.AssigneeID = i.AssigneeID.String()
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

func userConnection(p store.Page[store.User]) *model.UserConnection {
	conn := &model.UserConnection{Edges: make([]*model.UserEdge, len(p.Items)), PageInfo: pageInfo(p), TotalCount: p.TotalCount}
	for i, u := range p.Items {
		conn.Edges[i] = &model.UserEdge{Cursor: p.Cursors[i], Node: userModel(u)}
	}
	return conn
}

func projectConnection(p store.Page[store.Project]) *model.ProjectConnection {
	conn := &model.ProjectConnection{Edges: make([]*model.ProjectEdge, len(p.Items)), PageInfo: pageInfo(p), TotalCount: p.TotalCount}
	for i, pr := range p.Items {
		conn.Edges[i] = &model.ProjectEdge{Cursor: p.Cursors[i], Node: projectModel(pr)}
	}
	return conn
}

func issueConnection(p store.Page[store.Issue]) *model.IssueConnection {
	conn := &model.IssueConnection{Edges: make([]*model.IssueEdge, len(p.Items)), PageInfo: pageInfo(p), TotalCount: p.TotalCount}
	for i, is := range p.Items {
		conn.Edges[i] = &model.IssueEdge{Cursor: p.Cursors[i], Node: issueModel(is)}
	}
	return conn
}

func commentConnection(p store.Page[store.Comment]) *model.CommentConnection {
	conn := &model.CommentConnection{Edges: make([]*model.CommentEdge, len(p.Items)), PageInfo: pageInfo(p), TotalCount: p.TotalCount}
	for i, c := range p.Items {
		conn.Edges[i] = &model.CommentEdge{Cursor: p.Cursors[i], Node: commentModel(c)}
	}
	return conn
}
