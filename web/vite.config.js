import { defineConfig } from 'vite';

// One build serves every host: the app decides at run time whether it is on
// a tenant host (the organization's board) or the admin host (the operator
// console). The Go package webapp embeds the output and serves it at /app/.
export default defineConfig({
  base: '/app/',
  // JSX through Vite's own transformer: no React plugin needed (no fast
  // refresh in `vite dev`, a full reload instead).
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
    // Every browser that runs es2022 supports <link rel=modulepreload>.
    modulePreload: { polyfill: false },
  },
  server: {
    // `npm run dev` next to a server on 127.0.0.1:18090: open
    // http://<slug>.localhost:5173/app/ (the Host header is kept, so the
    // server routes to that tenant).
    allowedHosts: ['.localhost', 'localhost'],
    proxy: {
      '/graphql': { target: 'http://127.0.0.1:18090', ws: true, changeOrigin: false },
    },
  },
});
