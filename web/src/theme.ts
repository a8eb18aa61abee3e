// Light and dark from prefers-color-scheme (pure CSS), with a switch that overrides it.
const KEY = 'collab-theme'
export type Theme = 'system' | 'light' | 'dark'

export function initTheme(): void {
  apply((localStorage.getItem(KEY) as Theme | null) ?? 'system')
}

export function currentTheme(): Theme {
  return (localStorage.getItem(KEY) as Theme | null) ?? 'system'
}

export function setTheme(theme: Theme): void {
  localStorage.setItem(KEY, theme)
  apply(theme)
}

function apply(theme: Theme): void {
  if (theme === 'system') delete document.documentElement.dataset.theme
  else document.documentElement.dataset.theme = theme
}
