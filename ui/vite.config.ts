// Builds the UI into the Python package (maestro_dagster/api/ui_dist), served by `maestro api` under /ui.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  base: "/ui/",
  plugins: [react()],
  build: {
    outDir: "../maestro_dagster/api/ui_dist",
    emptyOutDir: true,
    // No inline script or module-preload polyfill: the page runs under script-src 'self'.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  server: { proxy: { "/api": "http://127.0.0.1:8000", "/ws": { target: "ws://127.0.0.1:8000", ws: true } } },
});
