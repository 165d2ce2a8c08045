// The REST client (token in sessionStorage) and the live WebSocket (docs/realtime.md).

const SESSION_KEY = "warbler.console.session";
const BASE = "/api/v1";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export const session = {
  load() {
    try {
      return JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    } catch {
      return null;
    }
  },
  save(value) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  },
  clear() {
    sessionStorage.removeItem(SESSION_KEY);
  },
};

/** Called when the server says the token is no longer good (expired, revoked). */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** api("GET", "/support/queue", {query: {limit: 50}}) -> parsed JSON (null on 204). */
export async function api(method, path, { body, query, auth = true } = {}) {
  const url = new URL(BASE + path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const headers = { Accept: "application/json" };
  const current = session.load();
  if (auth && current) headers.Authorization = `Bearer ${current.access_token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (exc) {
    throw new ApiError(0, "network", String(exc.message || exc));
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const err = (data && data.error) || {};
    if (response.status === 401 && auth) onUnauthorized();
    throw new ApiError(
      response.status,
      err.code || "http_error",
      err.message || `HTTP ${response.status}`,
      err.details,
    );
  }
  return data;
}

/**
 * One WebSocket per signed-in console: resumes from its cursor after a drop, with backoff.
 * `onEvent(frame)` gets each `event` frame; `onState(open)` whether it is connected.
 */
export class Live {
  constructor(onEvent, onState) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.socket = null;
    this.cursor = null;
    this.stopped = true;
    this.delay = 500;
    this.timer = null;
    this.open = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
    this.setOpen(false);
  }

  setOpen(open) {
    if (this.open !== open) {
      this.open = open;
      this.onState(open);
    }
  }

  connect() {
    const current = session.load();
    if (this.stopped || !current) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = new URL(`${scheme}://${location.host}${BASE}/ws`);
    url.searchParams.set("access_token", current.access_token);
    if (this.cursor !== null) url.searchParams.set("cursor", String(this.cursor));
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onmessage = (msg) => this.receive(msg.data);
    socket.onclose = (evt) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.setOpen(false);
      if (this.stopped || evt.code === 4401) return; // 4401: the token is no good any more
      this.timer = setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    };
  }

  async receive(raw) {
    const text = typeof raw === "string" ? raw : await raw.text();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.type === "hello") {
      if (this.cursor === null) this.cursor = frame.cursor;
      this.delay = 500;
      this.setOpen(true);
    } else if (frame.type === "synced" || frame.type === "resync_required") {
      this.cursor = frame.cursor;
      if (frame.type === "resync_required") this.onEvent({ event: "resync" });
    } else if (frame.type === "event") {
      if (frame.id !== null && frame.id !== undefined) {
        if (this.cursor !== null && frame.id <= this.cursor) return; // replay overlap
        this.cursor = frame.id;
      }
      this.onEvent(frame);
    }
  }
}
