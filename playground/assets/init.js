/*
 * Starts GraphiQL on the tenantql playground page.
 *
 * Settings come from data attributes on #graphiql, written by the Go
 * handler, so the page needs no inline script and a Content-Security-Policy
 * of script-src 'self' holds. Queries and mutations go over HTTP to the
 * endpoint; subscriptions go over a websocket (graphql-transport-ws, bundled
 * in GraphiQL) to the same path on ws:// or wss://, whichever matches the
 * page. Headers typed in the headers editor (such as Authorization) are sent
 * with each HTTP request and as the websocket's connection parameters.
 */
(function () {
  'use strict';

  var root = document.getElementById('graphiql');
  var url = new URL(root.getAttribute('data-endpoint') || '/graphql', window.location.href);
  var wsURL = new URL(url.href);
  wsURL.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';

  var fetcher = GraphiQL.createFetcher({
    url: url.href,
    subscriptionUrl: wsURL.href
  });

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: root.getAttribute('data-default-query') || undefined,
      defaultHeaders: '{}',
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false
    })
  );
})();
