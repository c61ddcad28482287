// Small conveniences on every page; each page works without them.

const root = document.documentElement;
const saved = localStorage.getItem('cadre-theme');
if (saved === 'light' || saved === 'dark') root.dataset.theme = saved;

document.getElementById('theme-toggle')?.addEventListener('click', () => {
  const dark = root.dataset.theme
    ? root.dataset.theme === 'dark'
    : matchMedia('(prefers-color-scheme: dark)').matches;
  root.dataset.theme = dark ? 'light' : 'dark';
  localStorage.setItem('cadre-theme', root.dataset.theme);
});

// Forms that undo or destroy something ask first.
document.addEventListener('submit', (event) => {
  const message = event.target.dataset?.confirm;
  if (message && !confirm(message)) event.preventDefault();
});

// A secret shown once is selected whole when focused, ready to copy.
document.addEventListener('focusin', (event) => {
  if (event.target.matches?.('[data-select-on-focus]')) event.target.select();
});

// "3 min ago" stays true while the page is open; countdowns tick.
function distance(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 10) return null;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} days`;
}

export function refreshTimes(scope = document) {
  const now = Date.now();
  for (const el of scope.querySelectorAll('time[datetime]')) {
    const at = Date.parse(el.getAttribute('datetime'));
    if (Number.isNaN(at)) continue;
    if (el.classList.contains('countdown')) {
      const left = at - now;
      if (left <= 0) { el.textContent = 'expired'; continue; }
      const m = Math.floor(left / 60000), s = Math.floor((left % 60000) / 1000);
      el.textContent = `in ${m}:${String(s).padStart(2, '0')}`;
      continue;
    }
    const d = distance(now - at);
    el.textContent = d === null ? 'just now' : (at > now ? `in ${d}` : `${d} ago`);
    el.title = new Date(at).toLocaleString();
  }
}

refreshTimes();
setInterval(() => refreshTimes(), 1000);
document.addEventListener('cadre:refreshed', (e) => refreshTimes(e.detail?.scope ?? document));
