// Where sign-ins are kept. Web storage is per origin, so a token saved on
// acme.example.com is never readable (or sent) on globex.example.com.
//
// Tenant user tokens live in localStorage (they survive a restart of the
// browser, like any "remember me"); the operator's admin token lives in
// sessionStorage only, so it is gone when the tab closes.

const USER_TOKEN = 'tenantql.token';
const ADMIN_TOKEN = 'tenantql.adminToken';

function read(storage, key) {
  try {
    return storage.getItem(key) || null;
  } catch {
    return null; // storage disabled (private mode, policy)
  }
}

function write(storage, key, value) {
  try {
    if (value) storage.setItem(key, value);
    else storage.removeItem(key);
  } catch {
    // Storage disabled: the sign-in lasts as long as the page.
  }
}

export const userToken = {
  get: () => read(window.localStorage, USER_TOKEN),
  set: (token) => write(window.localStorage, USER_TOKEN, token),
};

export const adminToken = {
  get: () => read(window.sessionStorage, ADMIN_TOKEN),
  set: (token) => write(window.sessionStorage, ADMIN_TOKEN, token),
};

/**
 * Whether token's own expiry (the exp claim of the JWT the server issues)
 * has passed. False when it cannot tell: the token is then refused for
 * another reason (it belongs to another organization, or to one since
 * deleted, or is not a token at all). Reads the claim without checking
 * the signature: only the server can, and does.
 */
export function tokenExpired(token, now = Date.now()) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const { exp } = JSON.parse(atob(payload));
    return typeof exp === 'number' && exp * 1000 <= now;
  } catch {
    return false;
  }
}
