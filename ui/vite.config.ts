import { defineConfig } from 'vite';

// Relative base: the querier serves the same page at /, /graph and /stores (all one level deep),
// and a route prefix in front of the querier keeps working because nothing is absolute.
export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    assetsDir: 'static',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    chunkSizeWarningLimit: 800,
  },
  server: {
    // `npm run dev` against a running querier: HYPNOS_API=http://127.0.0.1:10902 npm run dev
    proxy: process.env.HYPNOS_API ? { '/api': process.env.HYPNOS_API } : undefined,
  },
});
