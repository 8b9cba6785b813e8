// Turning Apollo's errors into something a person can read. The server puts
// a stable extensions.code on every GraphQL error (UNAUTHENTICATED,
// BAD_USER_INPUT, TENANT_REQUIRED, ...), also in the JSON bodies of its
// non-200 answers (503 TENANT_NOT_READY, 403 TENANT_SUSPENDED, ...).
import { CombinedGraphQLErrors, ServerError } from '@apollo/client/errors';

/** The GraphQL errors inside any error Apollo reports (possibly none). */
export function graphQLErrors(error) {
  if (!error) return [];
  if (CombinedGraphQLErrors.is(error)) return error.errors;
  if (ServerError.is(error)) {
    try {
      const body = JSON.parse(error.bodyText);
      if (Array.isArray(body?.errors)) return body.errors;
    } catch {
      // not JSON: fall through
    }
  }
  if (Array.isArray(error)) return error; // graphql-ws hands over plain arrays
  return [];
}

/** The first error's extensions.code, or null. */
export function errorCode(error) {
  return graphQLErrors(error)[0]?.extensions?.code ?? null;
}

/** A message to show: the server's own words when it sent any. */
export function errorMessage(error) {
  const errs = graphQLErrors(error);
  if (errs.length > 0) {
    return [...new Set(errs.map((e) => e.message))].join(' · ');
  }
  if (ServerError.is(error)) {
    return `The server answered HTTP ${error.statusCode}. Try again in a moment.`;
  }
  if (error?.name === 'TypeError' || /fetch|network/i.test(error?.message ?? '')) {
    return 'The server cannot be reached. Check your connection and try again.';
  }
  return error?.message || 'Something went wrong.';
}
