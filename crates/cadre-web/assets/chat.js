// Chat: send a message and show the answer as it streams in, read from
// the API's event stream (SPEC §6) through the page's own endpoint. The
// answer is text (textContent), never HTML. Once the turn ends the page
// redraws its regions from a fresh render, as live updates do.

const form = document.getElementById('composer');
const list = document.getElementById('messages');
const errorBox = document.getElementById('chat-error');
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

function bubble(role, who, text) {
  document.getElementById('chat-empty')?.remove();
  const li = document.createElement('li');
  li.className = `msg ${role}`;
  const head = document.createElement('div');
  head.className = 'who';
  head.textContent = who;
  const body = document.createElement('div');
  body.className = 'text';
  body.textContent = text;
  li.append(head, body);
  list.append(li);
  li.scrollIntoView({ block: 'end' });
  return body;
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

// One server-sent event block: its `event:` name and `data:` JSON.
function parse(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (!data.length) return null;
  try { return { event, data: JSON.parse(data.join('\n')) }; } catch { return null; }
}

async function send(message) {
  const sessionField = form.elements.session_id;
  const body = { message };
  if (sessionField.value) body.sessionId = sessionField.value;
  errorBox.hidden = true;
  document.body.dataset.busy = '1';
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  bubble('user', 'You', message);
  const answer = bubble('assistant', 'Orchestrator', '');
  answer.classList.add('streaming');
  let newSession = false;
  try {
    const r = await fetch(form.dataset.stream, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify(body),
    });
    if (r.redirected || r.status === 401) { location.reload(); return; }
    if (!r.ok) {
      const failure = await r.json().catch(() => null);
      answer.closest('li').remove();
      showError(failure?.error?.message ?? `The message could not be sent (${r.status}).`);
      form.elements.message.value = message;
      return;
    }
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const ev = parse(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (!ev) continue;
        if (ev.event === 'session' && !sessionField.value) {
          sessionField.value = ev.data.sessionId;
          newSession = true;
          history.replaceState(null, '', form.dataset.sessionBase + ev.data.sessionId);
        } else if (ev.event === 'chat_stream') {
          answer.textContent += ev.data.delta;
        } else if (ev.event === 'chat_message' && ev.data.role !== 'user') {
          answer.textContent = ev.data.content;
        } else if (ev.event === 'error') {
          showError(ev.data.message ?? 'The answer failed.');
        }
      }
    }
  } catch (err) {
    showError('The connection was lost; the answer is kept and shows on reload.');
  } finally {
    answer.classList.remove('streaming');
    button.disabled = false;
    delete document.body.dataset.busy;
  }
  // A new conversation needs the page for its session (its live channel);
  // an existing one redraws in place.
  if (newSession) location.replace(location.href);
  else document.dispatchEvent(new CustomEvent('cadre:refresh'));
}

form?.addEventListener('submit', (event) => {
  if (!window.TextDecoderStream) return; // the form posts without streaming
  event.preventDefault();
  const message = form.elements.message.value.trim();
  if (!message || document.body.dataset.busy) return;
  form.elements.message.value = '';
  send(message);
});

form?.elements.message.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});
