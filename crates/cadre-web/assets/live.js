// Live pages: the page names its channels in <body data-live="…">. Over
// the WebSocket (SPEC §6) it hears what changed and redraws its regions
// ([data-region]) from a fresh render of the same URL, so what is drawn
// live is exactly what a reload would draw.

const channels = (document.body.dataset.live || '').split(/\s+/).filter(Boolean);
const status = document.getElementById('live-status');
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';
const QUIET = new Set(['subscribed', 'pong', 'error', 'presence_update', 'lock_acquired', 'lock_released']);

let socket = null;
let lastEventId = null;
let backoff = 1000;
let timer = null;
let inflight = false;
let again = false;

function setStatus(on) {
  if (!status) return;
  status.classList.toggle('on', on);
  status.textContent = on ? 'live' : 'offline';
}

function send(message) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}
// Other modules (presence) send through this page's one socket.
document.addEventListener('cadre:send', (e) => send(e.detail));

async function connect() {
  let token;
  try {
    const r = await fetch('/ui/ws-token', { method: 'POST', headers: { 'x-csrf-token': csrf } });
    if (r.redirected || r.status === 401) { location.reload(); return; }
    if (!r.ok) throw new Error(`ws-token ${r.status}`);
    token = (await r.json()).token;
  } catch (err) {
    return retry();
  }
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const params = new URLSearchParams({ token });
  if (lastEventId !== null) params.set('lastEventId', lastEventId);
  socket = new WebSocket(`${scheme}//${location.host}/ws?${params}`);
  socket.addEventListener('open', () => {
    backoff = 1000;
    setStatus(true);
    for (const channel of channels) send({ type: 'subscribe', payload: { channel } });
    document.dispatchEvent(new CustomEvent('cadre:connected'));
    // Whatever happened between the page's render and this subscription
    // (or while we were away) is drawn now.
    scheduleRefresh();
  });
  socket.addEventListener('message', (m) => {
    let msg;
    try { msg = JSON.parse(m.data); } catch { return; }
    if (typeof msg.id === 'number') lastEventId = msg.id;
    document.dispatchEvent(new CustomEvent('cadre:event', { detail: msg }));
    if (msg.type === 'error') console.warn('live:', msg.payload?.code, msg.payload?.message);
    // Streamed chat tokens are drawn by the chat page itself.
    if (!QUIET.has(msg.type) && msg.type !== 'chat_stream') scheduleRefresh();
  });
  socket.addEventListener('close', () => { setStatus(false); socket = null; retry(); });
}

function retry() {
  setTimeout(connect, backoff + Math.random() * 500);
  backoff = Math.min(backoff * 2, 30000);
}

// A page busy drawing something itself (a streaming answer) is redrawn
// once it is done.
function scheduleRefresh() {
  if (timer) return;
  timer = setTimeout(() => {
    timer = null;
    if (document.body.dataset.busy) scheduleRefresh();
    else refresh();
  }, 250);
}
document.addEventListener('cadre:refresh', () => scheduleRefresh());

async function refresh() {
  if (inflight) { again = true; return; }
  inflight = true;
  try {
    const r = await fetch(location.href, { headers: { 'x-cadre-refresh': '1' } });
    if (r.redirected && new URL(r.url).pathname === '/login') { location.reload(); return; }
    if (!r.ok) return;
    const fresh = new DOMParser().parseFromString(await r.text(), 'text/html');
    for (const next of fresh.querySelectorAll('[data-region]')) {
      const current = document.querySelector(`[data-region="${next.dataset.region}"]`);
      if (!current) continue;
      // Never pull a field out from under someone typing in it.
      if (current.contains(document.activeElement) && document.activeElement !== document.body) continue;
      for (const open of current.querySelectorAll('details[open][id]')) {
        next.querySelector(`details[id="${open.id}"]`)?.setAttribute('open', '');
      }
      for (const closed of current.querySelectorAll('details[id]:not([open])')) {
        next.querySelector(`details[id="${closed.id}"]`)?.removeAttribute('open');
      }
      current.replaceWith(next);
      document.dispatchEvent(new CustomEvent('cadre:refreshed', { detail: { scope: next } }));
    }
  } catch (err) {
    console.warn('live refresh failed', err);
  } finally {
    inflight = false;
    if (again) { again = false; scheduleRefresh(); }
  }
}

if (channels.length) connect();
