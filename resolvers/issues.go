package resolvers

import (
	"context"
	"errors"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/tenantql/tenantql/apierr"
	"github.com/tenantql/tenantql/graph/model"
	"github.com/tenantql/tenantql/store"
)

// Password rules of createUser (the store validates every other field; a
// malformed project or issue key is simply one that names nothing).
const (
	minPasswordLen = 8   // characters
	maxPasswordLen = 128 // bytes, checked before hashing
)

// tenantStore returns the store on the request's tenant database.
func tenantStore(ctx context.Context) (*store.Store, error) {
	target, err := tenantTarget(ctx)
	if err != nil {
		return nil, err
	}
	return store.New(target.DB), nil
}

// pageArgs checks first (1..100, default def) and after.
func pageArgs(first *int, after *string, def int) (store.PageArgs, error) {
	n, err := checkFirst(first, def)
	if err != nil {
		return store.PageArgs{}, err
	}
	args := store.PageArgs{First: n}
	if after != nil {
		args.After = *after // the store refuses what is not its cursor
	}
	return args, nil
}

func (r *Resolver) listUsers(ctx context.Context, first *int, after *string) (*model.UserConnection, error) {
	return listPage(ctx, first, after, 50, (*store.Store).ListUsers, userConnection)
}

func (r *Resolver) listProjects(ctx context.Context, first *int, after *string) (*model.ProjectConnection, error) {
	return listPage(ctx, first, after, 50, (*store.Store).ListProjects, projectConnection)
}

// listPage validates the page arguments (def is first's default), runs
// list on the request's tenant store and converts the page.
func listPage[T, C any](ctx context.Context, first *int, after *string, def int,
	list func(*store.Store, context.Context, store.PageArgs) (store.Page[T], error), conv func(store.Page[T]) C) (C, error) {
	var zero C
	args, err := pageArgs(first, after, def)
	if err != nil {
		return zero, err
	}
	s, err := tenantStore(ctx)
	if err != nil {
		return zero, err
	}
	page, err := list(s, ctx, args)
	if err != nil {
		return zero, err
	}
	return conv(page), nil
}

// projectByKey returns the project, or null when no project has key
// (including malformed keys).
func (r *Resolver) projectByKey(ctx context.Context, key string) (*model.Project, error) {
	return lookupOrNull(ctx, key, (*store.Store).ProjectByKey, projectModel)
}

// issueByKey returns the issue, or null for an unknown or malformed key.
func (r *Resolver) issueByKey(ctx context.Context, key string) (*model.Issue, error) {
	return lookupOrNull(ctx, key, (*store.Store).IssueByKey, issueModel)
}

// lookupOrNull runs a store lookup by key on the request's tenant store:
// store.ErrNotFound becomes GraphQL null, anything else an error.
func lookupOrNull[T, M any](ctx context.Context, key string,
	lookup func(*store.Store, context.Context, string) (T, error), conv func(T) *M) (*M, error) {
	s, err := tenantStore(ctx)
	if err != nil {
		return nil, err
	}
	v, err := lookup(s, ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return conv(v), nil
}

// issueFilter converts the GraphQL filter; projectID, when set, narrows
// it to one project (Project.issues).
func issueFilter(in *model.IssueFilter, projectID *uuid.UUID) (store.IssueFilter, error) {
	f := store.IssueFilter{ProjectID: projectID}
	if in == nil {
		return f, nil
	}
	f.ProjectKey = in.ProjectKey // an unknown or malformed key matches nothing
	if in.Status != nil {
		st := store.IssueStatus(*in.Status)
		f.Status = &st
	}
	if in.AssigneeID != nil {
		id, err := parseID("filter.assigneeId", *in.AssigneeID)
		if err != nil {
			return f, err
		}
		f.AssigneeID = &id
	}
	return f, nil
}

// listIssues pages through the issues that match filter, newest first;
// projectID (from Project.issues) narrows them to one project.
func (r *Resolver) listIssues(ctx context.Context, projectID *uuid.UUID, first *int, after *string, filter *model.IssueFilter) (*model.IssueConnection, error) {
	args, err := pageArgs(first, after, 20)
	if err != nil {
		return nil, err
	}
	f, err := issueFilter(filter, projectID)
	if err != nil {
		return nil, err
	}
	s, err := tenantStore(ctx)
	if err != nil {
		return nil, err
	}
	args.SkipCount = !selects(ctx, "totalCount")
	// the users shown come with the page, in its statement, and what is
	// not shown is not read
	shown := nodeFields(ctx)
	args.JoinAssignee, args.JoinReporter = shown["assignee"], shown["reporter"]
	args.SkipProjectKey, args.SkipDescription = !shown["key"], !shown["description"]
	page, err := s.ListIssues(ctx, f, args)
	if err != nil {
		return nil, err
	}
	return issueConnection(page), nil
}

// selects reports whether the current field's selection asks for the
// field at path below its (object) result, fragments and aliases
// included: selects(ctx, "totalCount"), selects(ctx, "edges", "node",
// "assignee").
func selects(ctx context.Context, path ...string) bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return true // not under the executor: assume everything is wanted
	}
	return selectsBelow(graphql.GetOperationContext(ctx), fc.Field.Selections, fc.Field.Definition.Type.Name(), path)
}

// nodeFields returns the names of the fields the current (connection)
// field's selection asks for on edges.node, fragments and aliases
// included (nil, which selects nothing, when it asks for no node); under
// no executor, the fields that change how a page is read.
func nodeFields(ctx context.Context) map[string]bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return map[string]bool{"key": true, "description": true, "assignee": true, "reporter": true}
	}
	oc := graphql.GetOperationContext(ctx)
	var names map[string]bool
	for _, edges := range graphql.CollectFields(oc, fc.Field.Selections, []string{fc.Field.Definition.Type.Name()}) {
		if edges.Name != "edges" {
			continue
		}
		for _, node := range graphql.CollectFields(oc, edges.Selections, []string{edges.Definition.Type.Name()}) {
			if node.Name != "node" {
				continue
			}
			for _, f := range graphql.CollectFields(oc, node.Selections, []string{node.Definition.Type.Name()}) {
				if names == nil {
					names = map[string]bool{}
				}
				names[f.Name] = true
			}
		}
	}
	return names
}

func selectsBelow(oc *graphql.OperationContext, sel ast.SelectionSet, typeName string, path []string) bool {
	for _, f := range graphql.CollectFields(oc, sel, []string{typeName}) {
		if f.Name != path[0] {
			continue
		}
		if len(path) == 1 || selectsBelow(oc, f.Selections, f.Definition.Type.Name(), path[1:]) {
			return true
		}
	}
	return false
}

// projectIssues is Project.issues.
func (r *Resolver) projectIssues(ctx context.Context, p *model.Project, first *int, after *string, filter *model.IssueFilter) (*model.IssueConnection, error) {
	id, err := uuid.Parse(p.ID)
	if err != nil {
		return nil, err
	}
	return r.listIssues(ctx, &id, first, after, filter)
}

// issueComments is Issue.comments: the first page through the batched
// loader (one query for all issues of the response), later pages directly.
func (r *Resolver) issueComments(ctx context.Context, is *model.Issue, first *int, after *string) (*model.CommentConnection, error) {
	args, err := pageArgs(first, after, 20)
	if err != nil {
		return nil, err
	}
	id, err := uuid.Parse(is.ID)
	if err != nil {
		return nil, err
	}
	l, err := loadersFor(ctx)
	if err != nil {
		return nil, err
	}
	var page store.Page[store.Comment]
	if args.After == "" {
		page, err = l.firstComments(args.First).Load(ctx, id)
	} else {
		page, err = l.store.ListComments(ctx, id, args)
	}
	if err != nil {
		return nil, err
	}
	return commentConnection(page), nil
}

// issueProject is Issue.project, batched.
func (r *Resolver) issueProject(ctx context.Context, is *model.Issue) (*model.Project, error) {
	id, err := uuid.Parse(is.ProjectID)
	if err != nil {
		return nil, err
	}
	l, err := loadersFor(ctx)
	if err != nil {
		return nil, err
	}
	p, err := l.project(ctx, id)
	if err != nil {
		return nil, err
	}
	return projectModel(p), nil
}

// userField resolves a user reference (assignee, reporter, author): the
// user joined in with the issue (listIssues) when there is one, else from
// the user cache, else batched; "" means none.
func (r *Resolver) userField(ctx context.Context, userID string, joined *model.User) (*model.User, error) {
	if joined != nil {
		return joined, nil
	}
	if userID == "" {
		return nil, nil
	}
	id, err := uuid.Parse(userID)
	if err != nil {
		return nil, err
	}
	target, err := tenantTarget(ctx)
	if err != nil {
		return nil, err
	}
	key := userKey{tenant: target.Tenant.ID, user: id}
	if u, ok := r.users.get(r.UserTTL, key); ok {
		return userModel(u), nil
	}
	l, err := loadersFor(ctx)
	if err != nil {
		return nil, err
	}
	u, err := l.user(ctx, id)
	if err != nil {
		return nil, err
	}
	r.users.add(r.UserTTL, key, u)
	return userModel(u), nil
}

// createUser adds a user to the organization. Only an OWNER or ADMIN may,
// and only an OWNER may create another OWNER.
func (r *Resolver) createUser(ctx context.Context, in model.CreateUserInput) (*model.User, error) {
	me, err := r.viewer(ctx)
	if err != nil {
		return nil, err
	}
	role := store.RoleMember
	if in.Role != nil {
		role = store.Role(*in.Role)
	}
	switch {
	case me.Role != store.RoleOwner && me.Role != store.RoleAdmin:
		return nil, apierr.New(apierr.Forbidden, "only an OWNER or ADMIN may create users")
	case role == store.RoleOwner && me.Role != store.RoleOwner:
		return nil, apierr.New(apierr.Forbidden, "only an OWNER may create another OWNER")
	}
	if err := checkText("password", in.Password, maxPasswordLen); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(in.Password) < minPasswordLen {
		return nil, badInput("password must be at least %d characters", minPasswordLen)
	}
	if !role.Valid() {
		return nil, badInput("role must be OWNER, ADMIN or MEMBER")
	}
	target, err := tenantTarget(ctx)
	if err != nil {
		return nil, err
	}
	// the hash takes tens of milliseconds of CPU and no connection
	var hash string
	var hashErr error
	if err := target.WithoutAdmission(ctx, func() { hash, hashErr = r.Passwords.Hash(target.Tenant.ID.String(), in.Password) }); err != nil {
		return nil, err
	}
	if hashErr != nil {
		return nil, hashErr
	}
	u, err := store.New(target.DB).CreateUser(ctx, store.NewUser{Email: in.Email, Name: in.Name, Role: role, PasswordHash: hash})
	if err != nil {
		return nil, err
	}
	return userModel(u), nil
}

// createProject adds a project; a key already in use is CONFLICT.
func (r *Resolver) createProject(ctx context.Context, in model.CreateProjectInput) (*model.Project, error) {
	s, err := tenantStore(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.CreateProject(ctx, in.Key, in.Name)
	if err != nil {
		return nil, err
	}
	return projectModel(p), nil
}

// createIssue files an issue reported by the signed-in user.
func (r *Resolver) createIssue(ctx context.Context, in model.CreateIssueInput) (*model.Issue, error) {
	me, err := r.viewer(ctx)
	if err != nil {
		return nil, err
	}
	ni := store.NewIssue{ProjectKey: in.ProjectKey, Title: in.Title, ReporterID: me.ID}
	if in.Description != nil {
		ni.Description = *in.Description
	}
	if in.Status != nil {
		ni.Status = store.IssueStatus(*in.Status)
	}
	if in.AssigneeID != nil {
		id, err := parseID("assigneeId", *in.AssigneeID)
		if err != nil {
			return nil, err
		}
		ni.AssigneeID = &id
	}
	s, err := tenantStore(ctx)
	if err != nil {
		return nil, err
	}
	is, err := s.CreateIssue(ctx, ni)
	if err != nil {
		return nil, err
	}
	return issueModel(is), nil
}

// updateIssue changes the fields present in input; assigneeId: null
// unassigns, an absent assigneeId leaves the assignee as it is.
func (r *Resolver) updateIssue(ctx context.Context, key string, in model.UpdateIssueInput) (*model.Issue, error) {
	patch := store.IssuePatch{Title: in.Title, Description: in.Description}
	if in.Status != nil {
		st := store.IssueStatus(*in.Status)
		patch.Status = &st
	}
	if v, set := in.AssigneeID.ValueOK(); set {
		if v == nil {
			patch.ClearAssignee = true
		} else {
			id, err := parseID("assigneeId", *v)
			if err != nil {
				return nil, err
			}
			patch.AssigneeID = &id
		}
	}
	s, err := tenantStore(ctx)
	if err != nil {
		return nil, err
	}
	is, err := s.UpdateIssue(ctx, key, patch)
	if err != nil {
		return nil, err
	}
	return issueModel(is), nil
}

func (r *Resolver) deleteIssue(ctx context.Context, key string) (bool, error) {
	s, err := tenantStore(ctx)
	if err != nil {
		return false, err
	}
	if err := s.DeleteIssue(ctx, key); err != nil {
		return false, err
	}
	return true, nil
}

// addComment adds the signed-in user's comment to an issue.
func (r *Resolver) addComment(ctx context.Context, issueKey, body string) (*model.Comment, error) {
	me, err := r.viewer(ctx)
	if err != nil {
		return nil, err
	}
	s, err := tenantStore(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.AddComment(ctx, issueKey, me.ID, body)
	if err != nil {
		return nil, err
	}
	return commentModel(c), nil
}
