// Inline SVG icons for the navigation, drawn with currentColor strokes.

const PATHS = {
  meetings: 'M3 7h12v10H3z M15 10l6-3v10l-6-3',
  approvals: 'M6 3h9l4 4v14H6z M9 13l2.5 2.5L16 11',
  notices: 'M4 10v4h3l5 4V6L7 10z M16 9a4 4 0 0 1 0 6',
  learning: 'M3 6l9-3 9 3-9 3z M7 8v6c0 2 10 2 10 0V8 M21 6v6',
  membership: 'M9 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6z M3 20c0-3 3-5 6-5s6 2 6 5 M17 8v6 M14 11h6',
  org: 'M10 3h4v4h-4z M4 17h4v4H4z M16 17h4v4h-4z M12 7v5 M6 17v-5h12v5',
  accounts: 'M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z M4 21c0-4 4-6 8-6s8 2 8 6',
  audit: 'M12 3l8 3v6c0 5-4 8-8 9-4-1-8-4-8-9V6z M9 12l2 2 4-4',
};

/** Returns an SVG element for a navigation entry, hidden from screen readers. */
export function icon(name) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.classList.add('icon');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', PATHS[name] || '');
  svg.append(path);
  return svg;
}
