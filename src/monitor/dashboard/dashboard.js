// Live dashboard: history from /api/series (per-second points, and the
// queue readings the monitor kept), then one frame a second over
// Server-Sent Events from /events. Plain browser JavaScript, no build step.
/* global uPlot */
'use strict';

const WINDOW_S = 300;
const $ = (id) => document.getElementById(id);

const fmt = {
  rate: (v) => (v == null ? '–' : v >= 1000 ? `${(v / 1000).toFixed(1)}k` : String(Math.round(v))),
  ms: (v) => (v == null ? '–' : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v < 10 ? v.toFixed(2) : Math.round(v)} ms`),
  secs: (v) => (v == null ? '–' : v >= 120 ? `${Math.round(v / 60)} min` : `${v.toFixed(1)} s`),
  count: (v) => (v == null ? '–' : v.toLocaleString('en')),
};

function setTile(name, text) {
  $(`tile-${name}`).querySelector('.value').textContent = text;
}

function width(el) {
  return Math.max(300, el.parentElement.clientWidth - 16);
}

function chart(id, series, scales) {
  const el = $(id);
  const opts = {
    width: width(el),
    height: 220,
    // Every chart shows the same window, so they line up.
    scales: { x: { time: true, range: () => [Date.now() / 1000 - WINDOW_S, Date.now() / 1000] }, ...(scales || {}) },
    axes: [{ stroke: '#8a96a3', grid: { stroke: '#222b35' } }, { stroke: '#8a96a3', grid: { stroke: '#222b35' } }],
    series: [{}, ...series],
  };
  if (scales && scales.s) opts.axes.push({ scale: 's', side: 1, stroke: '#8a96a3', grid: { show: false } });
  const data = [[], ...series.map(() => [])];
  return { plot: new uPlot(opts, data, el), data, el };
}

const charts = {
  throughput: chart('chart-throughput', [
    { label: 'accepted', stroke: '#8a96a3' },
    { label: 'delivered', stroke: '#3fb950', width: 2 },
    { label: 'retried', stroke: '#d29922' },
    { label: 'failed', stroke: '#f85149' },
    { label: 'expired', stroke: '#bc8cff' },
  ]),
  latency: chart('chart-latency', [
    { label: 'p50', stroke: '#58a6ff', width: 2 },
    { label: 'p99', stroke: '#f0883e' },
  ]),
  queue: chart(
    'chart-queue',
    [
      { label: 'waiting', stroke: '#58a6ff', width: 2 },
      { label: 'lag (s)', stroke: '#d29922', scale: 's' },
    ],
    { s: { auto: true } },
  ),
  dead: chart('chart-dead', [{ label: 'dead letters', stroke: '#f85149', width: 2 }]),
};

function trim(c) {
  const cutoff = Date.now() / 1000 - WINDOW_S;
  while (c.data[0].length > 0 && c.data[0][0] < cutoff) for (const col of c.data) col.shift();
}

// Readings further apart than this are not joined by a line: nothing was
// read in between (Redis down; for the queue charts, also a monitor with
// no dashboard open and no scrape).
const GAP_S = 90;

function push(c, t, values) {
  const xs = c.data[0];
  if (xs.length > 0 && t <= xs[xs.length - 1]) return false;
  if (xs.length > 0 && t - xs[xs.length - 1] > GAP_S) {
    xs.push(xs[xs.length - 1] + 1);
    values.forEach((_, i) => c.data[i + 1].push(null));
  }
  xs.push(t);
  values.forEach((v, i) => c.data[i + 1].push(v));
  trim(c);
  return true;
}

function addQueue(t, q) {
  if (push(charts.queue, t, [q.postbacks, q.lagSeconds])) charts.queue.plot.setData(charts.queue.data);
  if (push(charts.dead, t, [q.deadLetters])) charts.dead.plot.setData(charts.dead.data);
}

function addPoint(p) {
  if (push(charts.throughput, p.t, [p.accepted, p.delivered, p.retried, p.dead, p.expired])) charts.throughput.plot.setData(charts.throughput.data);
  if (push(charts.latency, p.t, [p.p50, p.p99])) charts.latency.plot.setData(charts.latency.data);
}

function showFailing(rows) {
  const body = $('failing').querySelector('tbody');
  body.textContent = '';
  if (rows.length === 0) {
    body.innerHTML = '<tr><td class="empty" colspan="2">none</td></tr>';
    return;
  }
  for (const [origin, n] of rows) {
    const tr = document.createElement('tr');
    const a = document.createElement('td');
    a.textContent = origin;
    const b = document.createElement('td');
    b.className = 'n';
    b.textContent = fmt.count(n);
    tr.append(a, b);
    body.append(tr);
  }
}

// A frame arrives every second; none for STALE_MS means the monitor is gone,
// hung, or its feed refused us: say so rather than show old numbers as live.
const STALE_MS = 5000;
let lastFrameAt = Date.now();

function checkStale() {
  const age = Date.now() - lastFrameAt;
  const stale = age > STALE_MS;
  const el = $('stale');
  if (stale) {
    const since = document.body.dataset.frames ? `since ${new Date(lastFrameAt).toLocaleTimeString()} (${Math.round(age / 1000)} s)` : 'yet';
    el.textContent = `No update from the monitor ${since}: the numbers below are not live.`;
    $('status').textContent = 'not live: monitor unreachable or not answering';
  }
  if (el.hidden === stale) el.hidden = !stale;
  document.body.dataset.stale = String(stale);
}

const BANNER_DOWN = 'Redis is unreachable: ingest answers 503 and delivery is waiting. The numbers below are the last ones seen.';
const BANNER_FULL = 'Redis is full (maxmemory reached): ingest refuses every postback (503 redis_full) and statistics are not written, so the rates below read low. Keep delivery running, purge dead letters or raise maxmemory (README, Failure modes).';

function onFrame(frame) {
  lastFrameAt = Date.now();
  checkStale();
  const banner = $('banner');
  const text = !frame.redisUp ? BANNER_DOWN : frame.redisFull ? BANNER_FULL : null;
  if (text !== null && banner.textContent !== text) banner.textContent = text;
  banner.hidden = text === null;
  $('status').textContent = frame.redisUp ? `live · ${new Date(frame.at).toLocaleTimeString()}` : 'Redis unreachable';
  document.body.dataset.redis = !frame.redisUp ? 'down' : frame.redisFull ? 'full' : 'up';
  if (!frame.redisUp) return;
  // Every second since the last frame (a late tick carries several), then the tiles from the latest.
  for (const point of frame.points ?? (frame.point ? [frame.point] : [])) addPoint(point);
  const p = frame.point;
  if (p) {
    setTile('accepted', fmt.rate(p.accepted));
    setTile('delivered', fmt.rate(p.delivered));
    setTile('retried', fmt.rate(p.retried));
    setTile('dead', fmt.rate(p.dead));
    setTile('expired', fmt.rate(p.expired));
    setTile('p50', fmt.ms(p.p50));
    setTile('p99', fmt.ms(p.p99));
  }
  const q = frame.queue;
  if (q) {
    addQueue(Math.floor(frame.at / 1000), q);
    setTile('waiting', fmt.count(q.postbacks));
    setTile('lag', fmt.secs(q.lagSeconds));
    setTile('deadletters', fmt.count(q.deadLetters));
  }
  showFailing(frame.topFailing);
  document.body.dataset.frames = String(Number(document.body.dataset.frames || 0) + 1);
}

// The partners table: /partners every 2 s, sortable by any column. `at` is
// when the rows were read; `problem` says why the last read failed (null: it did not).
const partners = { rows: [], at: null, problem: null, key: null, asc: false, busy: false };
const PARTNERS_EVERY_MS = 2000;
// A read still unanswered after this is given up, so a hung monitor neither
// leaves the table looking live nor piles up requests.
const PARTNERS_TIMEOUT_MS = 5000;

// A time today as a time; any other day with its date (a pause until next week is not "until 2 PM").
function when(ms) {
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// One row across the table saying something (loading, nothing to show, unavailable).
function tableMessage(body, text, className) {
  const tr = document.createElement('tr');
  const td = cell(text, className);
  td.colSpan = 9;
  tr.append(td);
  body.append(tr);
}

// A partner in trouble stands out (a row class for its colour, and words,
// not colour alone): its breaker open or half-open, paused, or most of its
// attempts of the last minute failing, once it made FAILING_MIN_ATTEMPTS
// of them (two failures out of three is not yet a pattern).
const FAILING_MIN_ATTEMPTS = 10;
const FAILING_BELOW_PCT = 50;

function isFailing(r) {
  return r.attempts >= FAILING_MIN_ATTEMPTS && r.successPct != null && r.successPct < FAILING_BELOW_PCT;
}

// null, or the kind of trouble: 'open', 'half-open', 'paused' or 'failing'.
function trouble(r) {
  if (r.state === 'open' || r.state === 'half-open' || r.state === 'paused') return r.state;
  return isFailing(r) ? 'failing' : null;
}

// What the state cell says, with a marker for a partner in trouble.
const MARKS = {
  open: ['⚠', 'circuit breaker open: its postbacks wait in Redis, one probe at a time'],
  'half-open': ['⚠', 'circuit breaker half-open: a probe is testing the partner'],
  paused: ['‖', 'paused: its postbacks wait in Redis'],
  failing: ['⚠', `most attempts of the last minute failed (under ${FAILING_BELOW_PCT}% delivered)`],
};

function stateCell(r) {
  const kind = trouble(r);
  let text = r.state === 'paused' && r.pause && r.pause.until ? `paused until ${when(r.pause.until)}` : r.state;
  if (kind === 'failing') text = `${text} · failing`;
  const td = cell('', kind === 'failing' ? 'state-failing' : `state-${r.state}`);
  if (kind !== null) {
    const mark = document.createElement('span');
    mark.className = 'mark';
    mark.textContent = `${MARKS[kind][0]} `;
    mark.setAttribute('aria-hidden', 'true');
    td.append(mark);
  }
  td.append(text);
  const why = kind === null ? [] : [MARKS[kind][1]];
  if (r.pause && r.pause.reason) why.push(`reason: ${r.pause.reason}`);
  if (why.length > 0) td.title = why.join('; ');
  return td;
}

function sortValue(row, key) {
  if (key === 'lastError') return row.lastError ? row.lastError.at : -1;
  const v = row[key];
  return v == null ? -1 : v;
}

function showPartners() {
  const body = $('partners').querySelector('tbody');
  body.textContent = '';
  const rows = partners.rows.slice();
  if (partners.key) {
    const k = partners.key;
    rows.sort((a, b) => {
      const x = sortValue(a, k);
      const y = sortValue(b, k);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return partners.asc ? c : -c;
    });
  }
  showPartnersProblem();
  if (partners.at === null) {
    // Never read: say why instead of "loading" for ever (Redis down when the page opened).
    const text = partnersProblemText();
    tableMessage(body, text ?? 'loading…', text === null ? 'empty' : 'empty unavailable');
    return;
  }
  if (rows.length === 0) {
    tableMessage(body, 'no partner traffic in the last minute', 'empty');
    return;
  }
  for (const r of rows) {
    const tr = document.createElement('tr');
    const err = r.lastError ? `${r.lastError.status ?? r.lastError.code ?? ''} ${r.lastError.error ?? ''} (${new Date(r.lastError.at).toLocaleTimeString()})` : '';
    const kind = trouble(r);
    if (kind !== null) tr.className = `trouble trouble-${kind}`;
    tr.append(
      cell(r.origin),
      stateCell(r),
      cell(r.rate == null ? '–' : `${r.rate}/s`, 'n'),
      cell(fmt.count(r.inFlight), 'n'),
      cell(fmt.count(r.waiting), 'n'),
      cell(fmt.count(r.attempts), 'n'),
      cell(r.successPct == null ? '–' : `${r.successPct}%`, isFailing(r) ? 'n bad' : 'n'),
      cell(fmt.ms(r.p99Ms), 'n'),
      cell(err, 'err'),
    );
    tr.lastChild.title = err;
    body.append(tr);
  }
}

// A header sorts by its column: first descending (origin: ascending), then
// the other way. Each holds a button, so Tab reaches it and Enter or Space
// sorts; a click anywhere in the cell does too (the button's bubbles up).
// aria-sort tells a screen reader which column sorts, and which way.
for (const th of $('partners').querySelectorAll('th[data-key]')) {
  th.addEventListener('click', () => {
    const key = th.dataset.key;
    partners.asc = partners.key === key ? !partners.asc : key === 'origin';
    partners.key = key;
    for (const other of $('partners').querySelectorAll('th')) {
      other.classList.remove('sorted', 'asc');
      other.removeAttribute('aria-sort');
    }
    th.classList.add('sorted');
    if (partners.asc) th.classList.add('asc');
    th.setAttribute('aria-sort', partners.asc ? 'ascending' : 'descending');
    showPartners();
  });
}

// Why the last read of /partners failed, in the monitor's words; null when it did not.
function partnersProblemText() {
  return partners.problem === null ? null : `partners unavailable: ${partners.problem}; retrying every ${PARTNERS_EVERY_MS / 1000} s`;
}

// Rows from an earlier read stay, dimmed, under a note that says they are
// old and why (a table never read says it in its one row instead).
function showPartnersProblem() {
  const note = $('partners-problem');
  const text = partners.at === null ? null : partnersProblemText();
  if (text !== null) note.textContent = `${text}. The rows below are from ${when(partners.at)}.`;
  note.hidden = text === null;
  $('partners').classList.toggle('old', text !== null);
  document.body.dataset.partnersStatus = partners.problem !== null ? 'unavailable' : partners.at === null ? 'loading' : 'live';
}

// Why an answer other than 200 came: the monitor's own message (a coded JSON error), else its status.
async function whyNot(res) {
  try {
    const body = await res.json();
    if (body && typeof body.message === 'string') {
      const status = typeof body.error === 'string' ? `${res.status} ${body.error}` : String(res.status);
      return `${body.message} (the monitor answered ${status})`;
    }
  } catch {
    // not JSON: a proxy's page
  }
  return `the monitor answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
}

async function refreshPartners() {
  if (document.hidden || partners.busy) return;
  partners.busy = true;
  try {
    const res = await fetch('/partners', { cache: 'no-store', signal: AbortSignal.timeout(PARTNERS_TIMEOUT_MS) });
    if (res.ok) {
      partners.rows = (await res.json()).partners;
      partners.at = Date.now();
      partners.problem = null;
      document.body.dataset.partners = String(partners.rows.length);
    } else {
      partners.problem = await whyNot(res);
    }
  } catch (err) {
    partners.problem = err && err.name === 'TimeoutError' ? `the monitor did not answer within ${PARTNERS_TIMEOUT_MS / 1000} s` : 'the monitor is unreachable';
  } finally {
    partners.busy = false;
  }
  showPartners();
}

async function start() {
  refreshPartners();
  setInterval(refreshPartners, PARTNERS_EVERY_MS);
  try {
    const res = await fetch(`/api/series?seconds=${WINDOW_S}`);
    if (res.ok) {
      const history = await res.json();
      for (const p of history.points) addPoint(p);
      // The queue charts start from the readings the monitor kept (its last minutes), not empty.
      const queue = Array.isArray(history.queue) ? history.queue : [];
      for (const q of queue) addQueue(q.t, q);
      // What the queue chart holds before the first live frame (the frames come after: connect() below).
      document.body.dataset.queueHistory = String(charts.queue.data[0].length);
    }
  } catch {
    // live frames fill the charts anyway
  }
  connect();
  setInterval(checkStale, 1000);
}

// EventSource retries by itself after a dropped connection, but gives up for
// good on an answer other than 200 (503 overloaded when the monitor feeds
// 100 dashboards already, a proxy's 502): then open a new one after 5 s.
function connect() {
  const events = new EventSource('/events');
  events.onmessage = (e) => onFrame(JSON.parse(e.data));
  events.onerror = () => {
    $('status').textContent = 'monitor unreachable: reconnecting…';
    if (events.readyState === EventSource.CLOSED) {
      events.close();
      setTimeout(connect, 5000);
    }
  };
}

window.addEventListener('resize', () => {
  for (const c of Object.values(charts)) c.plot.setSize({ width: width(c.el), height: 220 });
});

start();
