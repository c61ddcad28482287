// Who else is looking at this task (SPEC §6 presence), named from the
// page's member list.

const list = document.getElementById('presence');
const task = list?.dataset.task;
const me = document.body.dataset.me;
const names = new Map([...document.querySelectorAll('#member-names li')].map((li) => [li.dataset.id, li.textContent]));
const here = new Map();

function draw() {
  list.replaceChildren(...[...here.entries()]
    .filter(([id]) => id !== me)
    .map(([id, action]) => {
      const li = document.createElement('li');
      li.textContent = `${names.get(id) ?? 'someone'} · ${action}`;
      return li;
    }));
}

function send(message) { document.dispatchEvent(new CustomEvent('cadre:send', { detail: message })); }
function announce() { send({ type: 'presence', payload: { taskId: task, action: 'viewing' } }); }

if (task) {
  document.addEventListener('cadre:connected', announce);
  setInterval(announce, 30000);
  document.addEventListener('cadre:event', (e) => {
    const msg = e.detail;
    if (msg.type !== 'presence_update' || msg.payload?.taskId !== task) return;
    if (msg.payload.snapshot) {
      here.clear();
      for (const u of msg.payload.users ?? []) here.set(u.user?.id, u.action);
    } else if (msg.payload.action === 'left') {
      here.delete(msg.payload.user?.id);
    } else {
      here.set(msg.payload.user?.id, msg.payload.action);
    }
    draw();
  });
}
