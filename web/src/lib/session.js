import { useEffect, useMemo, useRef, useSyncExternalStore } from 'react';
import { createSession } from './apollo.js';

/**
 * The Apollo session for a token: rebuilt when the token changes, disposed
 * (websocket closed, queries stopped) when replaced or unmounted.
 */
export function useSession(token, onUnauthenticated) {
  const callback = useRef(onUnauthenticated);
  useEffect(() => {
    callback.current = onUnauthenticated;
  });
  const session = useMemo(
    () => createSession({ token, onUnauthenticated: () => callback.current?.() }),
    [token],
  );
  useEffect(() => () => session.dispose(), [session]);
  return session;
}

/** The session websocket's state: idle, connecting, connected or offline. */
export function useLive(session) {
  return useSyncExternalStore(session.live.subscribe, session.live.get);
}
