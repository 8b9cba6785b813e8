// Small building blocks shared by the board and the console.
import { errorMessage } from './lib/errors.js';

export function Spinner({ label = 'Loading…' }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

/** A GraphQL or network error, in the server's own words. */
export function ErrorNote({ error, onRetry, onDismiss }) {
  if (!error) return null;
  return (
    <div className="error-note" role="alert">
      <span>{typeof error === 'string' ? error : errorMessage(error)}</span>
      {onRetry && (
        <button type="button" className="link" onClick={() => onRetry()}>
          Try again
        </button>
      )}
      {onDismiss && (
        <button type="button" className="link" aria-label="Dismiss" onClick={onDismiss}>
          ✕
        </button>
      )}
    </div>
  );
}

export function Empty({ title, children }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children && <div className="empty-body">{children}</div>}
    </div>
  );
}

const LIVE_LABELS = {
  idle: 'Live',
  connecting: 'Connecting…',
  connected: 'Live',
  offline: 'Reconnecting…',
};

const TITLES = {
  idle: 'Updates arrive live while there is something to watch',
  connecting: 'Opening the subscription websocket',
  connected: 'Subscription websocket open: changes arrive live',
  offline: 'The subscription websocket dropped; retrying',
};

/** Shows whether subscriptions are flowing. */
export function LiveBadge({ state }) {
  return (
    <span className={`live live-${state}`} data-testid="live" data-state={state} title={TITLES[state]}>
      <span className="dot" aria-hidden="true" />
      {LIVE_LABELS[state] ?? state}
    </span>
  );
}

export function Logo() {
  return (
    <svg className="logo" viewBox="0 0 32 32" aria-hidden="true">
      <path d="M16 3 27.3 9.5v13L16 29 4.7 22.5v-13z" fill="none" stroke="currentColor" strokeWidth="3" strokeLinejoin="round" />
      <circle cx="16" cy="16" r="4.5" fill="currentColor" />
    </svg>
  );
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** "3 minutes ago", with the full date on hover. */
export function Time({ value }) {
  if (!value) return null;
  const date = new Date(value);
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  let text;
  if (abs < 45) text = 'just now';
  else if (abs < 3600) text = relative.format(Math.round(seconds / 60), 'minute');
  else if (abs < 86400) text = relative.format(Math.round(seconds / 3600), 'hour');
  else if (abs < 30 * 86400) text = relative.format(Math.round(seconds / 86400), 'day');
  else text = absolute.format(date);
  return (
    <time dateTime={value} title={absolute.format(date)}>
      {text}
    </time>
  );
}
