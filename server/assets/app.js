// Wharf file browser: progressive enhancement of the listing the server renders. Every
// action is the WebDAV request any other client would send to the same URLs (PUT, MKCOL,
// MOVE, DELETE); each state-changing one carries X-Wharf-Request, without which the
// server refuses writes that come from a browser (its CSRF check). Names only ever reach
// the DOM through textContent, never as markup.
'use strict';

(function () {
  document.documentElement.classList.add('js');
  const main = document.getElementById('drop');
  if (!main) return;
  const dir = main.dataset.dir; // this collection's href, percent-encoded, ending in '/'
  const $ = (id) => document.getElementById(id);
  const MARKER = { 'X-Wharf-Request': '1' };
  const PARALLEL = 3;

  // ---- messages -------------------------------------------------------------------------

  const REASONS = {
    0: 'the server could not be reached (network error or connection cut)',
    400: 'the server refused the request (is the name valid?)',
    401: 'you are not signed in, or your password was not accepted; reload the page to sign in',
    403: 'you do not have the right to do this here',
    404: 'it no longer exists; someone may have moved or deleted it',
    409: 'the folder it belongs in is missing, or something is in the way',
    412: 'a file or folder with that name already exists',
    413: 'the file is larger than this server accepts',
    423: 'it is locked (someone is editing it); try again later',
    429: 'too many failed logins; try again later',
    502: 'the destination is on another server',
    507: 'not enough storage: the quota is used up',
  };

  function reason(status, method) {
    if (status === 405 && method === 'MKCOL') return 'a file or folder with that name already exists';
    if (status === 405) return 'this is not allowed here';
    if (REASONS[status]) return REASONS[status];
    return status >= 500 ? 'the server failed' : 'the request was refused';
  }

  function say(text, kind) {
    const box = document.createElement('div');
    box.className = 'msg ' + (kind || 'error');
    const span = document.createElement('span');
    span.textContent = text;
    const close = document.createElement('button');
    close.type = 'button';
    close.textContent = '×';
    close.setAttribute('aria-label', 'Dismiss');
    close.addEventListener('click', () => box.remove());
    box.append(span, close);
    $('messages').append(box);
    if (kind === 'info') setTimeout(() => box.remove(), 4000);
  }

  function failed(what, status, method) {
    say(what + ' failed: ' + reason(status, method) + (status ? ' (HTTP ' + status + ').' : '.'));
  }

  // ---- requests -------------------------------------------------------------------------

  async function dav(method, url, headers) {
    try {
      // Resolved against the origin, not the document: a page opened as
      // http://user:pw@host/ keeps the credentials in its base URL, and fetch refuses those.
      const r = await fetch(new URL(url, location.origin + location.pathname), { method, headers: Object.assign({}, MARKER, headers || {}), credentials: 'same-origin' });
      return r.status;
    } catch (e) {
      return 0;
    }
  }

  const ok = (status) => status >= 200 && status < 300;

  // Fetches this page again and swaps the table in, keeping messages and uploads on screen.
  async function refresh() {
    try {
      const r = await fetch(location.href, { headers: { Accept: 'text/html' }, cache: 'no-store', credentials: 'same-origin' });
      if (!r.ok) return;
      const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
      const body = doc.querySelector('#listing tbody');
      if (body) document.querySelector('#listing tbody').replaceWith(document.adoptNode(body));
      const empty = doc.getElementById('empty');
      if (empty) $('empty').hidden = empty.hidden;
    } catch (e) {
      // The listing stays as it was; the action's own message already said what happened.
    }
  }

  function listedNames() {
    return new Set(Array.from(document.querySelectorAll('#listing tbody tr'), (tr) => tr.dataset.name));
  }

  function badName(name) {
    if (!name || name === '.' || name === '..') return 'a name is needed';
    if (name.includes('/')) return 'a name cannot contain "/"';
    return null;
  }

  // ---- the dialog (new folder, rename, confirmations) ------------------------------------

  // Resolves to the entered text (or true when there is no input), or null if cancelled.
  function ask(text, value, okLabel) {
    const dlg = $('dialog');
    const input = $('dialog-input');
    $('dialog-text').textContent = text;
    $('dialog-ok').textContent = okLabel || 'OK';
    input.hidden = value === null;
    input.value = value || '';
    return new Promise((resolve) => {
      const done = (result) => {
        $('dialog-form').removeEventListener('submit', submit);
        $('dialog-cancel').removeEventListener('click', cancel);
        dlg.removeEventListener('cancel', cancel);
        if (dlg.open) dlg.close();
        resolve(result);
      };
      const submit = (e) => { e.preventDefault(); done(value === null ? true : input.value.trim()); };
      const cancel = (e) => { e.preventDefault(); done(null); };
      $('dialog-form').addEventListener('submit', submit);
      $('dialog-cancel').addEventListener('click', cancel);
      dlg.addEventListener('cancel', cancel);
      dlg.showModal();
      if (value !== null) {
        input.focus();
        const dot = input.value.lastIndexOf('.');
        input.setSelectionRange(0, dot > 0 ? dot : input.value.length);
      } else {
        $('dialog-ok').focus();
      }
    });
  }

  // ---- new folder, rename, delete --------------------------------------------------------

  async function mkdir() {
    const name = await ask('Name of the new folder:', '', 'Create');
    if (name === null) return;
    const bad = badName(name);
    if (bad) return say('Creating a folder failed: ' + bad + '.');
    const status = await dav('MKCOL', dir + encodeURIComponent(name) + '/');
    if (!ok(status)) return failed('Creating folder "' + name + '"', status, 'MKCOL');
    say('Created folder "' + name + '".', 'info');
    refresh();
  }

  async function rename(row) {
    const old = row.dataset.name;
    const isDir = row.classList.contains('dir');
    const name = await ask('New name for "' + old + '":', old, 'Rename');
    if (name === null || name === old) return;
    const bad = badName(name);
    if (bad) return say('Renaming failed: ' + bad + '.');
    const target = dir + encodeURIComponent(name) + (isDir ? '/' : '');
    const status = await dav('MOVE', row.dataset.href, { Destination: target, Overwrite: 'F' });
    if (!ok(status)) return failed('Renaming "' + old + '"', status, 'MOVE');
    say('Renamed "' + old + '" to "' + name + '".', 'info');
    refresh();
  }

  async function remove(row) {
    const name = row.dataset.name;
    const what = row.classList.contains('dir') ? 'the folder "' + name + '" and everything in it' : '"' + name + '"';
    if (!(await ask('Delete ' + what + '? This cannot be undone.', null, 'Delete'))) return;
    const status = await dav('DELETE', row.dataset.href);
    if (!ok(status)) return failed('Deleting "' + name + '"', status, 'DELETE');
    say('Deleted "' + name + '".', 'info');
    refresh();
  }

  document.querySelector('#listing').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-act]');
    if (!button) return;
    const row = button.closest('tr');
    if (button.dataset.act === 'rename') rename(row);
    if (button.dataset.act === 'delete') remove(row);
  });
  // Controls the principal has no right to use are not on the page at all.
  if ($('mkdir')) $('mkdir').addEventListener('click', mkdir);

  // ---- uploads ---------------------------------------------------------------------------

  let batch = []; // every upload since the list was last empty of running ones

  function human(n) {
    if (n < 1024) return n + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (v < 10 ? v.toFixed(1) : v.toFixed(0)) + ' ' + units[i];
  }

  function row(file) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = file.name;
    name.title = file.name;
    const bar = document.createElement('progress');
    bar.max = 1;
    bar.value = 0;
    const state = document.createElement('span');
    state.className = 'state';
    state.textContent = 'waiting';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.textContent = 'Cancel';
    li.append(name, bar, state, cancel);
    return { li, bar, state, cancel };
  }

  function overall() {
    const live = batch.filter((u) => u.status !== 'cancelled' && u.status !== 'failed');
    const total = live.reduce((s, u) => s + u.file.size, 0);
    const loaded = live.reduce((s, u) => s + u.loaded, 0);
    const done = batch.filter((u) => u.status === 'done').length;
    $('overall').value = total ? loaded / total : (live.length && done === live.length ? 1 : 0);
    $('overall-text').textContent = done + ' of ' + batch.length + ' files · ' + human(loaded) + ' of ' + human(total);
  }

  function show(u) {
    u.view.bar.value = u.file.size ? u.loaded / u.file.size : (u.status === 'done' ? 1 : 0);
    if (u.status === 'running') u.view.state.textContent = human(u.loaded) + ' of ' + human(u.file.size);
    overall();
  }

  function finish(u, status, error) {
    u.status = status;
    u.view.li.className = status;
    u.view.cancel.hidden = true;
    u.view.state.textContent = status === 'done' ? 'done' : status === 'cancelled' ? 'cancelled' : 'failed';
    if (status === 'done') u.loaded = u.file.size;
    if (error !== undefined) failed('Uploading "' + u.file.name + '"', error, 'PUT');
    show(u);
    pump();
  }

  function start(u) {
    const xhr = new XMLHttpRequest();
    u.xhr = xhr;
    u.status = 'running';
    xhr.open('PUT', dir + encodeURIComponent(u.file.name));
    xhr.setRequestHeader('X-Wharf-Request', '1');
    if (u.file.type) xhr.setRequestHeader('Content-Type', u.file.type);
    // Keep the file's own modification time (Wharf honours X-OC-Mtime, as ownCloud does).
    if (u.file.lastModified) xhr.setRequestHeader('X-OC-Mtime', String(Math.floor(u.file.lastModified / 1000)));
    xhr.upload.addEventListener('progress', (e) => { u.loaded = e.loaded; show(u); });
    xhr.addEventListener('load', () => (ok(xhr.status) ? finish(u, 'done') : finish(u, 'failed', xhr.status)));
    xhr.addEventListener('error', () => finish(u, 'failed', 0));
    xhr.addEventListener('abort', () => finish(u, 'cancelled'));
    xhr.send(u.file);
    show(u);
  }

  function pump() {
    const running = batch.filter((u) => u.status === 'running').length;
    const next = batch.filter((u) => u.status === 'queued').slice(0, Math.max(0, PARALLEL - running));
    next.forEach(start);
    if (running === 0 && next.length === 0 && batch.length) {
      $('cancel-all').hidden = true;
      refresh();
    }
  }

  function cancel(u) {
    if (u.status === 'running') u.xhr.abort();
    else if (u.status === 'queued') finish(u, 'cancelled');
  }

  async function upload(files) {
    if (!files.length) return;
    const existing = listedNames().size ? files.filter((f) => listedNames().has(f.name)) : [];
    if (existing.length) {
      const names = existing.map((f) => '"' + f.name + '"').join(', ');
      if (!(await ask('Replace ' + names + '? The current content will be lost.', null, 'Replace'))) {
        files = files.filter((f) => !existing.includes(f));
        if (!files.length) return;
      }
    }
    if (!batch.some((u) => u.status === 'running' || u.status === 'queued')) {
      batch = [];
      $('upload-list').textContent = '';
    }
    for (const file of files) {
      const u = { file, loaded: 0, status: 'queued', view: row(file) };
      u.view.cancel.addEventListener('click', () => cancel(u));
      $('upload-list').append(u.view.li);
      batch.push(u);
    }
    $('uploads').hidden = false;
    $('cancel-all').hidden = false;
    overall();
    pump();
  }

  $('cancel-all').addEventListener('click', () => batch.slice().reverse().forEach(cancel));
  if ($('pick')) {
    $('pick').addEventListener('change', (e) => {
      upload(Array.from(e.target.files));
      e.target.value = '';
    });
  }

  // ---- drag and drop ---------------------------------------------------------------------

  const writable = main.dataset.write === '1';
  const carriesFiles = (e) => writable && e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files');
  document.addEventListener('dragover', (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    main.classList.add('dragging');
  });
  document.addEventListener('dragleave', (e) => {
    if (e.relatedTarget === null) main.classList.remove('dragging');
  });
  document.addEventListener('drop', (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    main.classList.remove('dragging');
    const items = Array.from(e.dataTransfer.items || []);
    const folders = items.filter((i) => i.webkitGetAsEntry && i.webkitGetAsEntry() && i.webkitGetAsEntry().isDirectory);
    if (folders.length) say('Folders cannot be dropped here yet; drop the files inside them, or use a WebDAV client.');
    const names = new Set(folders.map((i) => i.webkitGetAsEntry().name));
    upload(Array.from(e.dataTransfer.files).filter((f) => !names.has(f.name)));
  });
})();
