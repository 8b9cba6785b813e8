// A minimal history router for the paths under /app/. The server answers
// every extension-less /app/... path with index.html, so deep links and
// reloads work.
import { useEffect, useState } from 'react';

export const BASE = '/app/';
const CHANGE = 'tenantql:navigate';

/** The path below /app/, without leading or trailing slashes ("p/WEB"). */
export function currentPath() {
  const p = window.location.pathname;
  const rest = p.startsWith(BASE) ? p.slice(BASE.length) : '';
  return rest.replace(/\/+$/, '');
}

/** Goes to /app/<path>; replace keeps the history entry. */
export function navigate(path, { replace = false } = {}) {
  const url = BASE + path.replace(/^\/+/, '');
  if (url === window.location.pathname) return;
  if (replace) window.history.replaceState(null, '', url);
  else window.history.pushState(null, '', url);
  window.dispatchEvent(new Event(CHANGE));
}

/** Re-renders on navigation; returns the path's segments, decoded. */
export function useRoute() {
  const [path, setPath] = useState(currentPath);
  useEffect(() => {
    const update = () => setPath(currentPath());
    window.addEventListener('popstate', update);
    window.addEventListener(CHANGE, update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener(CHANGE, update);
    };
  }, []);
  return path === '' ? [] : path.split('/').map(decodeURIComponent);
}

/** An <a> that navigates without reloading (and still opens in a new tab). */
export function linkHandler(path) {
  return (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    navigate(path);
  };
}
