// Shared CSS. Colours come from JupyterLab's --jp-* variables (Light, Dark, Voila), then VS Code's,
// then fixed fallbacks, so the widgets stay readable wherever they are rendered.

export const THEME_CSS = `
.cw {
  --cw-fg: var(--jp-ui-font-color1, var(--vscode-editor-foreground, #222));
  --cw-fg2: var(--jp-ui-font-color2, var(--vscode-descriptionForeground, #555));
  --cw-fg3: var(--jp-ui-font-color3, #888);
  --cw-bg: var(--jp-layout-color1, var(--vscode-editor-background, #fff));
  --cw-bg2: var(--jp-layout-color2, rgba(127, 127, 127, 0.08));
  --cw-border: var(--jp-border-color2, rgba(127, 127, 127, 0.3));
  --cw-accent: var(--jp-brand-color1, #1976d2);
  --cw-ok: var(--jp-success-color1, #2e7d32);
  --cw-warn: var(--jp-warn-color1, #ef6c00);
  --cw-err: var(--jp-error-color1, #d32f2f);
  --cw-info: var(--jp-info-color1, #0288d1);
  --cw-muted: var(--jp-layout-color3, #9e9e9e);
  --cw-font: var(--jp-ui-font-family, system-ui, -apple-system, "Segoe UI", sans-serif);
  --cw-mono: var(--jp-code-font-family, ui-monospace, "DejaVu Sans Mono", monospace);
  --cw-size: var(--jp-ui-font-size1, 13px);
  --cw-size-small: var(--jp-ui-font-size0, 11px);
  color: var(--cw-fg);
  background: var(--cw-bg);
  font-family: var(--cw-font);
  font-size: var(--cw-size);
  line-height: 1.4;
  box-sizing: border-box;
  border: 1px solid var(--cw-border);
  border-radius: 6px;
  padding: 8px 10px;
  min-width: 0;
}
.cw *, .cw *::before, .cw *::after { box-sizing: border-box; }
/* Native controls (calendar icons, scrollbars, select menus) follow a dark theme too. */
body[data-jp-theme-light="false"] .cw, body.vscode-dark .cw { color-scheme: dark; }
.cw-title { font-weight: 600; font-size: calc(var(--cw-size) * 1.08); margin-right: 8px; }
.cw-toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 10px; margin-bottom: 8px; }
.cw-spacer { flex: 1 1 auto; }
.cw-muted { color: var(--cw-fg2); }
.cw-small { font-size: var(--cw-size-small); }
.cw select, .cw input[type="text"], .cw button {
  font: inherit; font-size: var(--cw-size-small); color: var(--cw-fg);
  background: var(--jp-input-background, var(--cw-bg));
  border: 1px solid var(--jp-input-border-color, var(--cw-border));
  border-radius: 3px; padding: 2px 6px;
}
.cw button { cursor: pointer; background: var(--cw-bg2); }
.cw button[aria-pressed="true"] { border-color: var(--cw-accent); color: var(--cw-accent); }
.cw-dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; background: var(--cw-muted); flex: none; }
.cw-ok { color: var(--cw-ok); } .cw-warn { color: var(--cw-warn); } .cw-err { color: var(--cw-err); }
.cw-num { font-variant-numeric: tabular-nums; }
`;
