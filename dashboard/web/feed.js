// The page's data feed, the one place that speaks the dashboard's push protocol: the /events stream (`summary`
// on connect: the document without its records; then one `delta` per change: the new summary and the records of
// the groups that changed, or only their numbers when many did; `status` when latest.json becomes unreadable or
// readable again), with /api/summary polled every 2 s while the stream is unavailable, and the fetches of what
// the page shows (one page of /api/devices, one group of /api/device).

export const POLL_MS = 2000;

/** A function that runs `fn` now, or, when a run is under way, once more after it: however often it is called,
 *  runs never overlap and the last call is always followed by a run that started after it. */
export function coalesced(fn) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await fn();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  return run;
}

/** GETs `url` as JSON: `{ok, status, body, problem}` (`problem`: the server's X-Dashboard-Error header, or the
 *  error of a failed reply). Throws when the server cannot be reached. */
export async function getJson(url) {
  const res = await fetch(url, { cache: 'no-store' });
  const body = await res.json().catch(() => ({}));
  const problem = res.ok ? res.headers.get('X-Dashboard-Error') : (body.error ?? `HTTP ${res.status}`);
  return { ok: res.ok, status: res.status, body, problem };
}

/** The query of one page of groups: `/api/devices?...` (`metric`: the histogram's, when not the sort's). */
export function devicesUrl({ filter, sort, reverse, offset, limit, metric }) {
  const q = new URLSearchParams({ sort, offset: String(offset), limit: String(limit) });
  if (filter.trim()) q.set('filter', filter.trim());
  if (reverse) q.set('reverse', 'true');
  if (metric) q.set('metric', metric);
  return `/api/devices?${q}`;
}

/** Follows the dashboard: `onSummary(summary, generation)` for every new state that needs a full refresh of what
 *  the page shows (a stream opened, a poll that found a new generation), `onDelta(delta)` for each change pushed,
 *  `onStatus({error, stale_after_seconds})`, `onProblem(text|null)` after each poll, and `onMode(mode)` with
 *  connecting | live | polling | offline. */
export class Feed {
  constructor(handlers) {
    this.on = handlers;
    this.mode = 'connecting';
    this.pollTimer = null;
    this.generation = null;
  }

  start() {
    this.pollOnce();
    if (!('EventSource' in window)) {
      this.startPolling();
      return;
    }
    const source = new EventSource('/events');
    source.addEventListener('open', () => {
      this.stopPolling();
      this.setMode('live');
    });
    source.addEventListener('summary', (e) => {
      const m = JSON.parse(e.data);
      this.generation = m.generation;
      this.on.onSummary(m.summary, m.generation);
    });
    source.addEventListener('delta', (e) => {
      const d = JSON.parse(e.data);
      this.generation = d.generation;
      this.on.onDelta(d);
    });
    source.addEventListener('status', (e) => this.on.onStatus(JSON.parse(e.data)));
    // The browser reconnects by itself (unless the server refused the stream); poll meanwhile.
    source.addEventListener('error', () => this.startPolling());
  }

  setMode(mode) {
    if (this.mode !== mode) {
      this.mode = mode;
      this.on.onMode(mode);
    }
  }

  async pollOnce() {
    try {
      const r = await getJson('/api/summary');
      this.on.onProblem(r.problem ?? null);
      if (r.ok && r.body.generation !== this.generation) {
        this.generation = r.body.generation;
        this.on.onSummary(r.body.summary, r.body.generation);
      }
      if (this.mode !== 'live') this.setMode(this.pollTimer ? 'polling' : this.mode);
    } catch {
      if (this.mode !== 'live') this.setMode('offline');
    }
  }

  startPolling() {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => this.pollOnce(), POLL_MS);
    this.setMode('polling');
    this.pollOnce();
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }
}
