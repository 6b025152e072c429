// Cairn dashboard. Hand-written, no libraries, no build step; everything it
// loads comes from the master that served the page, everything it shows
// comes from the masters' JSON endpoints:
//
//   GET /master/state     every POLL_MS, from the leader (a standby answers
//                         307 to it, which fetch() follows);
//   GET /master/replica   of every known master, for the masters table;
//   GET /api/v1/events    the history API as Server-Sent Events, for the
//                         live timeline (any master serves it).
//
// Failover: the masters' addresses come from the last state
// ("cairn.masters"). When the master that answered stops answering, the
// next poll asks the others in turn; the event stream is reopened on a
// master that answers, from the last position it delivered (events already
// shown are skipped by id), so the timeline has no gap and no repeat.
// Requests to other masters are cross-origin: masters answer GETs with
// Access-Control-Allow-Origin: *.

'use strict';

(function () {
  const POLL_MS = 2000;
  const FETCH_TIMEOUT_MS = 4000;
  const EVENT_BACKLOG_POSITIONS = 300;  // history shown when the page opens
  const MAX_TIMELINE = 300;             // rows kept in the timeline
  const MAX_TASK_ROWS = 500;            // rows rendered in the tasks table
  const MAX_COMPLETED_TASKS = 100;      // most recent ended tasks shown

  const self = location.host;

  // ---- what the page knows ------------------------------------------------

  const model = {
    masters: [self],     // "host:port" of every master, the page's own first
    replicas: {},        // address -> /master/replica JSON, or {error}
    leader: null,        // address whose /master/state answered last
    state: null,         // the last /master/state
    stateTime: 0,        // Date.now() when it arrived
    lastError: null,     // why the last poll found no state
  };

  const events = {
    source: null,        // the open EventSource
    master: null,        // the address it reads from
    lastId: null,        // {position, index} of the newest event shown
    resumeFrom: null,    // the position to ask for next, when not lastId's
    opened: false,       // the current stream has opened
    failedOpenings: 0,   // streams in a row that failed before opening
    failedAt: {},        // address -> Date.now() of its last failure
    retryTimer: null,
  };

  // ---- small helpers --------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  // An element with attributes and children (strings become text nodes).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function url(address, path) {
    return location.protocol + '//' + address + path;
  }

  // fetch() with a timeout; resolves to {json, url} or rejects with an Error
  // whose message says what went wrong.
  async function getJson(address, path) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    try {
      const response = await fetch(url(address, path), {
        signal: controller.signal,
        cache: 'no-store',
        headers: {Accept: 'application/json'},
      });
      if (!response.ok) {
        let detail = '';
        try { detail = (await response.json()).error || ''; } catch (e) { /* not JSON */ }
        throw new Error('HTTP ' + response.status + (detail ? ': ' + detail : ''));
      }
      return {json: await response.json(), url: response.url};
    } catch (e) {
      if (e.name === 'AbortError') throw new Error('no answer in ' + FETCH_TIMEOUT_MS / 1000 + ' s');
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  function hostOf(href) {
    try { return new URL(href).host; } catch (e) { return null; }
  }

  function number(value, digits) {
    if (typeof value !== 'number' || !isFinite(value)) return '0';
    const fixed = value.toFixed(digits);
    return digits > 0 ? fixed.replace(/\.?0+$/, '') : fixed;
  }

  // Megabytes as "512 MB" / "3.5 GB".
  function megabytes(mb) {
    if (!mb) return '0 MB';
    return mb >= 1024 ? number(mb / 1024, 1) + ' GB' : number(mb, 0) + ' MB';
  }

  function clock(date) {
    return date.toLocaleTimeString([], {hour12: false}) + '.' +
        String(date.getMilliseconds()).padStart(3, '0');
  }

  function ago(seconds) {
    if (!seconds) return '';
    const s = Math.max(0, Date.now() / 1000 - seconds);
    if (s < 60) return Math.round(s) + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }

  function stateClass(state) {
    switch (state) {
      case 'TASK_RUNNING': return 'state state-ok';
      case 'TASK_STAGING': case 'TASK_STARTING': case 'TASK_KILLING':
      case 'TASK_UNREACHABLE': return 'state state-wait';
      case 'TASK_FAILED': case 'TASK_LOST': case 'TASK_ERROR':
      case 'TASK_DROPPED': case 'TASK_GONE': return 'state state-bad';
      case 'TASK_FINISHED': return 'state state-info';
      default: return 'state';
    }
  }

  function usage(used, total, format) {
    const fraction = total > 0 ? Math.min(1, (used || 0) / total) : 0;
    const fill = el('div', {class: 'usage-fill' + (fraction > 0.85 ? ' high' : '')});
    fill.style.width = Math.round(fraction * 100) + '%';  // CSSOM: allowed by the CSP
    return el('div', {class: 'usage'},
        el('div', {class: 'usage-bar'}, fill),
        el('span', {class: 'usage-text'}, format(used || 0) + ' / ' + format(total || 0)));
  }

  function fillRows(tbody, rows, columns, emptyText) {
    tbody.replaceChildren(...(rows.length ? rows :
        [el('tr', {}, el('td', {class: 'empty', colspan: columns}, emptyText))]));
  }

  // ---- polling the state ---------------------------------------------------

  // The masters to ask, best first: the last leader, this page's master,
  // then the others.
  function candidates() {
    const order = [];
    for (const a of [model.leader, self, ...model.masters]) {
      if (a && !order.includes(a)) order.push(a);
    }
    return order;
  }

  async function pollState() {
    const errors = [];
    for (const address of candidates()) {
      try {
        const answer = await getJson(address, '/master/state');
        model.state = answer.json;
        model.stateTime = Date.now();
        model.leader = hostOf(answer.url) || address;
        model.lastError = null;
        const masters = (answer.json.cairn && answer.json.cairn.masters) || [];
        if (masters.length) {
          model.masters = [self, ...masters.filter((m) => m !== self)];
        }
        return;
      } catch (e) {
        errors.push(address + ': ' + e.message);
      }
    }
    model.lastError = errors.join('; ');
  }

  async function pollReplicas() {
    const answers = await Promise.all(model.masters.map((address) =>
      getJson(address, '/master/replica').then(
          (a) => [address, a.json], (e) => [address, {error: e.message}])));
    model.replicas = Object.fromEntries(answers);
  }

  async function poll() {
    try {
      await pollState();     // may learn the masters' addresses
      await pollReplicas();
      render();
      if (!events.source && events.retryTimer === null) openEvents();
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  // ---- rendering -------------------------------------------------------------

  function agentsById() {
    const byId = {};
    for (const agent of (model.state && model.state.slaves) || []) byId[agent.id] = agent;
    return byId;
  }

  function frameworksById() {
    const byId = {};
    const s = model.state || {};
    for (const f of [...(s.frameworks || []), ...(s.completed_frameworks || [])]) byId[f.id] = f;
    return byId;
  }

  function render() {
    renderHeader();
    renderTiles();
    renderMasters();
    renderAgents();
    renderFrameworks();
    renderTasks();
  }

  function renderHeader() {
    const s = model.state;
    $('cluster').textContent = s ? [s.cluster, s.version && 'version ' + s.version]
        .filter(Boolean).join(' \u00b7 ') : '';
    const leader = $('leader');
    leader.textContent = 'leader: ' + (model.leader || 'unknown');
    leader.className = 'pill ' + (model.leader && !model.lastError ? 'pill-ok' : 'pill-wait');

    const connection = $('connection');
    const banner = $('banner');
    if (model.lastError) {
      connection.textContent = 'no master answers';
      connection.className = 'pill pill-bad';
      banner.hidden = false;
      banner.textContent = (s ? 'Showing the state of ' +
          Math.round((Date.now() - model.stateTime) / 1000) + ' s ago. ' : '') +
          'No master answers /master/state; retrying every ' + POLL_MS / 1000 +
          ' s (' + model.lastError + ').';
    } else {
      connection.textContent = 'updated ' + clock(new Date(model.stateTime)).slice(0, 8);
      connection.className = 'pill pill-ok';
      const selfReplica = model.replicas[self];
      if (selfReplica && selfReplica.error) {
        banner.hidden = false;
        banner.textContent = 'The master that served this page (' + self +
            ') does not answer (' + selfReplica.error + '); following ' + model.leader + '.';
      } else {
        banner.hidden = true;
      }
    }
  }

  function renderTiles() {
    const s = model.state;
    if (!s) return;
    let cpus = 0, cpusUsed = 0, mem = 0, memUsed = 0;
    for (const a of s.slaves || []) {
      cpus += (a.resources && a.resources.cpus) || 0;
      mem += (a.resources && a.resources.mem) || 0;
      cpusUsed += (a.used_resources && a.used_resources.cpus) || 0;
      memUsed += (a.used_resources && a.used_resources.mem) || 0;
    }
    let running = 0;
    for (const f of s.frameworks || []) {
      for (const t of f.tasks || []) if (t.state === 'TASK_RUNNING') running++;
    }
    $('tile-agents').textContent = (s.slaves || []).length;
    $('tile-frameworks').textContent = (s.frameworks || []).length;
    $('tile-tasks').textContent = running;
    $('tile-cpus').textContent = number(cpusUsed, 2) + ' / ' + number(cpus, 2);
    $('tile-mem').textContent = megabytes(memUsed) + ' / ' + megabytes(mem);
    $('tile-position').textContent = s.cairn && s.cairn.log_position !== undefined
        ? s.cairn.log_position : '\u2013';
  }

  function renderMasters() {
    const rows = model.masters.slice().sort().map((address) => {
      const r = model.replicas[address] || {};
      const role = r.error ? 'unreachable' : (r.role || '?');
      const roleClass = {leading: 'state state-ok', standby: 'state',
                         recovering: 'state state-wait',
                         unreachable: 'state state-bad'}[role] || 'state';
      const notes = [];
      if (address === self) notes.push('serves this page');
      if (r.error) notes.push('not answering: ' + r.error);
      return el('tr', {'data-master': address, 'data-role': role},
          el('td', {class: 'mono'}, el('a', {href: url(address, '/')}, address)),
          el('td', {}, el('span', {class: roleClass}, role)),
          el('td', {class: 'num'}, r.applied !== undefined ? r.applied : ''),
          el('td', {class: 'muted', title: notes.join('; ')}, notes.join('; ')));
    });
    fillRows($('masters'), rows, 4, 'no masters known');
  }

  function renderAgents() {
    const s = model.state;
    if (!s) return;
    const taskCount = {};
    for (const f of s.frameworks || []) {
      for (const t of f.tasks || []) taskCount[t.slave_id] = (taskCount[t.slave_id] || 0) + 1;
    }
    const agents = (s.slaves || []).slice().sort((a, b) => a.hostname.localeCompare(b.hostname));
    $('agents-count').textContent = agents.length;
    const rows = agents.map((a) => {
      const total = a.resources || {}, used = a.used_resources || {};
      return el('tr', {'data-agent': a.id},
          el('td', {}, el('strong', {}, a.hostname),
             a.deactivated ? el('span', {class: 'state state-wait'}, ' deactivated') : null),
          el('td', {class: 'mono muted', title: a.id}, a.id),
          el('td', {}, usage(used.cpus, total.cpus, (v) => number(v, 2))),
          el('td', {}, usage(used.mem, total.mem, megabytes)),
          el('td', {}, usage(used.disk, total.disk, megabytes)),
          el('td', {class: 'num'}, taskCount[a.id] || 0));
    });
    fillRows($('agents'), rows, 6, 'no agents registered');
  }

  function renderFrameworks() {
    const s = model.state;
    if (!s) return;
    const frameworks = s.frameworks || [];
    $('frameworks-count').textContent = frameworks.length;
    const rows = frameworks.map((f) => {
      const used = f.used_resources || {};
      const state = f.active ? (f.connected === false ? 'disconnected' : 'active') : 'inactive';
      return el('tr', {'data-framework': f.id},
          el('td', {}, el('strong', {}, f.name || '(unnamed)')),
          el('td', {class: 'mono muted', title: f.id}, f.id),
          el('td', {}, (f.roles && f.roles.length ? f.roles : [f.role]).filter(Boolean).join(', ')),
          el('td', {}, el('span', {class: state === 'active' ? 'state state-ok' : 'state state-wait'}, state)),
          el('td', {class: 'num'}, (f.tasks || []).length),
          el('td', {class: 'num'}, number(used.cpus || 0, 2)),
          el('td', {class: 'num'}, megabytes(used.mem || 0)));
    });
    fillRows($('frameworks'), rows, 7, 'no frameworks subscribed');
  }

  function lastUpdate(task) {
    const statuses = task.statuses || [];
    return statuses.length ? statuses[statuses.length - 1].timestamp : 0;
  }

  // The agent's sandbox browser for the task's executor, at the virtual
  // path Mesos agents give it: /frameworks/<f>/executors/<e>/runs/latest
  // (a command task's executor id is its task id).
  function sandboxLink(task, agent) {
    if (!agent || !agent.hostname || !agent.port) return '';
    const executor = task.executor_id || task.id;
    const path = '/frameworks/' + task.framework_id + '/executors/' + executor + '/runs/latest';
    return el('a', {href: 'http://' + agent.hostname + ':' + agent.port +
                          '/files/browse?path=' + encodeURIComponent(path),
                    target: '_blank', rel: 'noopener'}, 'sandbox');
  }

  function renderTasks() {
    const s = model.state;
    if (!s) return;
    const agents = agentsById();
    const frameworks = frameworksById();
    const live = [], ended = [];
    for (const f of [...(s.frameworks || []), ...(s.completed_frameworks || [])]) {
      for (const t of f.tasks || []) live.push(t);
      for (const t of f.unreachable_tasks || []) live.push(t);
      for (const t of f.completed_tasks || []) ended.push(t);
    }
    ended.sort((a, b) => lastUpdate(b) - lastUpdate(a));
    const tasks = [...live.sort((a, b) => lastUpdate(b) - lastUpdate(a)),
                   ...ended.slice(0, MAX_COMPLETED_TASKS)];
    const filter = $('task-filter').value.trim().toLowerCase();
    const shown = tasks.filter((t) => {
      if (!filter) return true;
      const agent = agents[t.slave_id] || {};
      const framework = frameworks[t.framework_id] || {};
      return [t.id, t.name, t.state, agent.hostname, framework.name]
          .some((v) => v && String(v).toLowerCase().includes(filter));
    });
    $('tasks-count').textContent = live.length + ' live' +
        (ended.length ? ', ' + ended.length + ' ended' : '');
    const rows = shown.slice(0, MAX_TASK_ROWS).map((t) => {
      const agent = agents[t.slave_id];
      const framework = frameworks[t.framework_id];
      const res = t.resources || {};
      const updated = lastUpdate(t);
      return el('tr', {'data-task': t.id, 'data-state': t.state},
          el('td', {title: t.name && t.name !== t.id ? t.name : null},
             el('span', {class: 'mono'}, t.id)),
          el('td', {}, el('span', {class: stateClass(t.state)}, t.state)),
          el('td', {}, framework ? framework.name : el('span', {class: 'mono muted'}, t.framework_id)),
          el('td', {}, agent ? agent.hostname : el('span', {class: 'mono muted'}, t.slave_id)),
          el('td', {class: 'num'}, number(res.cpus || 0, 2)),
          el('td', {class: 'num'}, megabytes(res.mem || 0)),
          el('td', {class: 'muted', title: updated ? new Date(updated * 1000).toISOString() : null},
             ago(updated)),
          el('td', {}, sandboxLink(t, agent)));
    });
    fillRows($('tasks'), rows, 8, filter ? 'no task matches' : 'no tasks');
  }

  // ---- the event timeline ----------------------------------------------------

  const EVENT_TYPES = [
    'agent_registered', 'agent_reregistered', 'agent_unreachable', 'agent_removed',
    'agent_deactivated', 'agent_reactivated', 'agent_drain_started', 'agent_drained',
    'agent_resources_updated',
    'framework_subscribed', 'framework_failed_over', 'framework_disconnected',
    'framework_deactivated', 'framework_updated', 'framework_removed',
    'tasks_launched', 'task_status_updated', 'task_status_acknowledged', 'task_kill_requested',
    'executor_exited',
    'offers_created', 'offers_rescinded', 'offers_declined', 'offers_expired',
    'weights_updated', 'quota_updated', 'resources_reserved', 'resources_unreserved',
    'maintenance_schedule_updated',
  ];
  const ENVELOPE = ['position', 'index', 'time', 'principal', 'request_id', 'cause'];

  function typeOf(event) {
    return Object.keys(event).find((k) => !ENVELOPE.includes(k)) || 'unknown';
  }

  const idOf = (x) => (x && x.value) || '?';

  function agentName(agentId) {
    const agent = agentsById()[agentId];
    return agent ? agent.hostname : agentId;
  }

  function frameworkName(frameworkId) {
    const framework = frameworksById()[frameworkId];
    return framework && framework.name ? framework.name : frameworkId;
  }

  // One line about `event` (of `type`), and the state it names, if any.
  function describe(type, body) {
    switch (type) {
      case 'agent_registered': case 'agent_reregistered':
        return {text: 'agent ' + (body.info && body.info.hostname) + ' (' + idOf(body.info && body.info.id) + ')'};
      case 'agent_unreachable': case 'agent_removed': case 'agent_deactivated':
      case 'agent_reactivated': case 'agent_drain_started': case 'agent_drained':
      case 'agent_resources_updated':
        return {text: 'agent ' + agentName(idOf(body.agent_id)) +
                (body.reason ? ': ' + body.reason : '')};
      case 'framework_subscribed': case 'framework_failed_over': case 'framework_updated':
        return {text: 'framework ' + (body.info && body.info.name) + ' (' + idOf(body.info && body.info.id) + ')'};
      case 'framework_disconnected': case 'framework_deactivated': case 'framework_removed':
        return {text: 'framework ' + frameworkName(idOf(body.framework_id)) +
                (body.reason ? ': ' + body.reason : '')};
      case 'tasks_launched': {
        const tasks = body.tasks || [];
        const on = tasks.length ? ' on ' + agentName(idOf(tasks[0].agent_id)) : '';
        return {text: tasks.map((t) => idOf(t.task_id)).join(', ') + on};
      }
      case 'task_status_updated': {
        const status = body.status || {};
        const details = [status.reason, status.message].filter(Boolean).join(': ');
        return {text: idOf(status.task_id) + (details ? ' (' + details + ')' : ''),
                state: status.state};
      }
      case 'task_status_acknowledged':
        return {text: idOf(body.task_id)};
      case 'task_kill_requested':
        return {text: idOf(body.task_id)};
      case 'executor_exited':
        return {text: idOf(body.executor_id) + ' on ' + agentName(idOf(body.agent_id)) +
                      ' (status ' + (body.status || 0) + ')'};
      case 'offers_created':
        return {text: (body.offers || []).length + ' offer(s)'};
      case 'offers_rescinded': case 'offers_declined': case 'offers_expired':
        return {text: (body.offer_ids || []).length + ' offer(s)'};
      case 'weights_updated':
        return {text: (body.weights || []).map((w) => w.role + '=' + w.weight).join(', ')};
      default:
        return {text: ''};
    }
  }

  function isOffer(type) { return type.startsWith('offers_'); }

  function applyOfferFilter() {
    const show = $('show-offers').checked;
    for (const li of $('timeline').children) {
      if (li.dataset.type && isOffer(li.dataset.type)) li.hidden = !show;
    }
  }

  function newer(event) {
    const last = events.lastId;
    return !last || event.position > last.position ||
        (event.position === last.position && (event.index || 0) > last.index);
  }

  function addEvent(event) {
    if (typeof event.position !== 'number' || !newer(event)) return;  // a repeat after a reopen
    events.lastId = {position: event.position, index: event.index || 0};
    const type = typeOf(event);
    const info = describe(type, event[type] || {});
    const nanos = event.time && event.time.nanoseconds;
    const when = nanos ? new Date(Number(nanos) / 1e6) : null;
    const what = el('div', {class: 'what'}, el('span', {class: 'type'}, type.replace(/_/g, ' ')), ' ',
        info.state ? el('span', {class: stateClass(info.state)}, info.state) : null,
        info.state && info.text ? ' ' : null, info.text || null);
    const meta = el('div', {class: 'meta'}, '#' + event.position + ':' + (event.index || 0) +
        (event.principal ? ' \u00b7 by ' + agentName(event.principal) : '') +
        (event.cause ? ' \u00b7 caused by #' + event.cause.position + ':' + (event.cause.index || 0) : ''));
    const li = el('li', {class: 'fresh', 'data-type': type, 'data-id': event.position + ':' + (event.index || 0),
                         'data-state': info.state},
        el('div', {class: 'when', title: when ? when.toISOString() : null}, when ? clock(when) : ''),
        what, meta);
    if (isOffer(type) && !$('show-offers').checked) li.hidden = true;
    const list = $('timeline');
    const waiting = list.querySelector('.waiting');
    if (waiting) waiting.remove();
    list.prepend(li);
    while (list.children.length > MAX_TIMELINE) list.lastElementChild.remove();
  }

  function setEventsStatus(text, cls) {
    const status = $('events-status');
    status.textContent = text;
    status.className = 'pill ' + cls;
  }

  // A master to read events from: this page's own while it answers, else
  // the leader, else any master that answered /master/replica; one whose
  // stream failed in the last few seconds only when no other is left.
  function eventsMaster() {
    const answers = (a) => model.replicas[a] && !model.replicas[a].error;
    const order = [self, model.leader, ...model.masters].filter((a) => a && answers(a));
    const fresh = order.filter((a) => !(Date.now() - (events.failedAt[a] || 0) < 5000));
    return fresh[0] || order[0] || null;
  }

  // The query of the next stream. Normally it resumes at the last position
  // shown (its events already shown are skipped by id); the first stream
  // starts a little in the past. When streams keep failing to open (the
  // position is not retained: 410), it takes the live tail and says so.
  function eventsQuery(address) {
    if (events.resumeFrom !== null) return 'from=' + events.resumeFrom;
    if (events.lastId) {
      if (events.failedOpenings < 6) return 'from=' + events.lastId.position;
    } else if (events.failedOpenings < 1) {
      const applied = Number((model.replicas[address] || {}).applied) || 0;
      return 'from=' + Math.max(0, applied - EVENT_BACKLOG_POSITIONS);
    }
    if (events.lastId) addGap('events after #' + events.lastId.position + ' may be missing');
    return '';  // the live tail
  }

  function addGap(text) {
    $('timeline').prepend(el('li', {class: 'gap'}, el('span', {class: 'empty'}, text)));
  }

  function openEvents() {
    events.retryTimer = null;
    const address = eventsMaster();
    if (!address) {
      setEventsStatus('no master answers', 'pill-bad');
      retryEvents(POLL_MS);
      return;
    }
    const query = eventsQuery(address);
    const streamUrl = url(address, '/api/v1/events' + (query ? '?' + query : ''));
    console.info('events: opening ' + streamUrl);
    const source = new EventSource(streamUrl);
    events.source = source;
    events.master = address;
    events.opened = false;
    setEventsStatus('connecting to ' + address + '\u2026', 'pill-wait');
    source.onopen = () => {
      events.opened = true;
      events.failedOpenings = 0;
      events.resumeFrom = null;
      setEventsStatus('live \u00b7 ' + address, 'pill-ok');
      const list = $('timeline');
      if (!list.children.length) {
        list.append(el('li', {class: 'waiting'}, el('span', {class: 'empty'}, 'waiting for events\u2026')));
      }
    };
    const onEvent = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      addEvent(event);
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
    source.onmessage = onEvent;  // unnamed events, should a master send them
    source.addEventListener('end', (message) => {
      // The master ended the stream, e.g. positions no longer retained.
      let end = {};
      try { end = JSON.parse(message.data); } catch (e) { /* keep {} */ }
      closeEvents();
      if (end.reason === 'lost' && end.resume_from !== undefined) {
        addGap('events before #' + end.resume_from + ' are no longer retained');
        events.resumeFrom = Number(end.resume_from);
      }
      setEventsStatus('stream ended (' + (end.reason || 'unknown') + '); reopening', 'pill-wait');
      retryEvents(1000);
    });
    source.onerror = () => {
      // The stream failed or its master went away. Reopen it ourselves (not
      // with EventSource's own retry) so that another master can take over.
      console.info('events: stream from ' + address + (events.opened ? ' ended' : ' failed to open'));
      if (!events.opened) events.failedOpenings++;
      events.failedAt[address] = Date.now();
      closeEvents();
      setEventsStatus('reconnecting\u2026', 'pill-wait');
      retryEvents(1000);
    };
  }

  function closeEvents() {
    if (events.source) events.source.close();
    events.source = null;
    events.opened = false;
  }

  function retryEvents(ms) {
    if (events.retryTimer !== null) return;
    events.retryTimer = setTimeout(openEvents, ms);
  }

  // ---- start -----------------------------------------------------------------

  $('task-filter').addEventListener('input', renderTasks);
  $('show-offers').addEventListener('change', applyOfferFilter);
  poll();
})();
