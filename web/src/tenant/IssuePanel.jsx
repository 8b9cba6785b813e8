// An issue's details beside the board: status, people, description and
// comments, with a form to add one.
import { useMutation, useQuery } from '@apollo/client/react';
import { useEffect, useState } from 'react';
import { linkHandler, navigate } from '../lib/router.js';
import { ADD_COMMENT, ISSUE_DETAILS } from '../operations.js';
import { Empty, ErrorNote, Spinner, Time } from '../ui.jsx';
import { COLUMNS, initials } from './Board.jsx';

export function IssuePanel({ issueKey, projectKey, onMove, known }) {
  const { data, error, loading, refetch } = useQuery(ISSUE_DETAILS, {
    variables: { key: issueKey },
    fetchPolicy: 'cache-and-network',
  });
  const close = `p/${encodeURIComponent(projectKey)}`;

  useEffect(() => {
    const onKey = (e) => {
      if (e.key === 'Escape' && !e.target.closest?.('input, textarea, select')) navigate(close);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [close]);

  const issue = data?.issue;
  return (
    <aside className="panel" aria-label={`Issue ${issueKey}`} data-testid="issue-panel">
      <div className="panel-head">
        <span className="issue-key">{issueKey}</span>
        <a className="close" href={`/app/${close}`} onClick={linkHandler(close)} aria-label="Close">
          ✕
        </a>
      </div>
      {!data ? (
        loading ? <Spinner /> : <ErrorNote error={error} onRetry={refetch} />
      ) : !issue ? (
        <Empty title={`There is no issue ${issueKey}.`} />
      ) : (
        <>
          <h2 className="panel-title">{issue.title}</h2>
          <dl className="facts">
            <dt>Status</dt>
            <dd>
              <select
                aria-label="Status"
                value={(known ?? issue).status}
                onChange={(e) => onMove(known ?? issue, e.target.value)}
              >
                {COLUMNS.map((c) => (
                  <option key={c.status} value={c.status}>
                    {c.title}
                  </option>
                ))}
              </select>
            </dd>
            <dt>Assignee</dt>
            <dd>{issue.assignee ? <Person user={issue.assignee} /> : <span className="muted">Unassigned</span>}</dd>
            <dt>Reporter</dt>
            <dd>
              <Person user={issue.reporter} />
            </dd>
            <dt>Created</dt>
            <dd>
              <Time value={issue.createdAt} />
            </dd>
            <dt>Updated</dt>
            <dd>
              <Time value={issue.updatedAt} />
            </dd>
          </dl>
          {issue.description ? (
            <p className="description">{issue.description}</p>
          ) : (
            <p className="muted small">No description.</p>
          )}
          <Comments issue={issue} />
        </>
      )}
    </aside>
  );
}

function Person({ user }) {
  return (
    <span className="person">
      <span className="avatar">{initials(user.name)}</span>
      {user.name}
    </span>
  );
}

function Comments({ issue }) {
  const comments = issue.comments.edges.map((e) => e.node);
  const [body, setBody] = useState('');
  const [add, { loading, error, reset }] = useMutation(ADD_COMMENT, {
    update(cache, { data }) {
      const comment = data?.addComment;
      if (!comment) return;
      cache.updateQuery({ query: ISSUE_DETAILS, variables: { key: issue.key } }, (d) => {
        const c = d?.issue?.comments;
        if (!c || c.edges.some((e) => e.node.id === comment.id)) return undefined;
        return {
          ...d,
          issue: {
            ...d.issue,
            comments: { ...c, totalCount: c.totalCount + 1, edges: [...c.edges, { __typename: 'CommentEdge', node: comment }] },
          },
        };
      });
    },
  });

  async function submit(event) {
    event.preventDefault();
    try {
      await add({ variables: { issueKey: issue.key, body: body.trim() } });
      setBody('');
    } catch {
      // shown through `error`
    }
  }

  return (
    <section className="comments" aria-labelledby="comments-title">
      <h3 id="comments-title">
        Comments <span className="count">{issue.comments.totalCount}</span>
      </h3>
      {comments.length === 0 ? (
        <p className="muted small">No comments yet.</p>
      ) : (
        <ol className="comment-list">
          {comments.map((c) => (
            <li key={c.id} className="comment" data-testid="comment">
              <div className="comment-meta">
                <strong>{c.author.name}</strong> · <Time value={c.createdAt} />
              </div>
              <p>{c.body}</p>
            </li>
          ))}
        </ol>
      )}
      <form className="stack" onSubmit={submit}>
        <ErrorNote error={error} onDismiss={reset} />
        <textarea
          aria-label="New comment"
          placeholder="Write a comment…"
          rows={3}
          required
          value={body}
          onChange={(e) => setBody(e.target.value)}
        />
        <button type="submit" className="primary" disabled={loading || !body.trim()}>
          {loading ? 'Posting…' : 'Comment'}
        </button>
      </form>
    </section>
  );
}
