// The widget's connection to Warbler: the visitor session, REST calls and the live WebSocket
// (docs/realtime.md: resume by cursor, drop duplicates, reconnect with backoff).

const API = "/api/v1";
const decoder = new TextDecoder();

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null; // storage blocked (privacy settings): the visitor is new on every load
  }
}

export class Client {
  constructor(widgetId, lang) {
    this.widgetId = widgetId;
    this.lang = lang;
    this.token = null;
    this.session = null;
    this.keyName = `warbler.visitor.${widgetId}`;
  }

  async request(method, path, body) {
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
      });
    } catch (err) {
      throw new ApiError(0, "network", String(err));
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code || "error", error.message || "", error.details);
    }
    return data;
  }

  config() {
    const id = encodeURIComponent(this.widgetId);
    return this.request("GET", `/support/widget/${id}/config?lang=${this.lang}`);
  }

  // A session: identified with a signed token, or anonymous with the stored resume key.
  async start(identityToken) {
    const store = storage();
    const body = { locale: this.lang };
    if (identityToken) body.identity_token = identityToken;
    else {
      const key = store && store.getItem(this.keyName);
      if (key) body.visitor_key = key;
    }
    const id = encodeURIComponent(this.widgetId);
    this.token = null;
    const session = await this.request("POST", `/support/widget/${id}/sessions`, body);
    if (session.visitor_key && store) store.setItem(this.keyName, session.visitor_key);
    this.token = session.access_token;
    this.session = session;
    return session;
  }
}

// The WebSocket: events after our cursor, in order, once each, across reconnects.
export class Live {
  constructor(client, handlers) {
    this.client = client;
    this.handlers = handlers; // onEvent(frame), onStatus("live"|"connecting"|"offline"), onResync(), onAuthLost()
    this.cursor = null;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
    this.watchdog = null;
    this.heartbeat = 25;
    window.addEventListener("online", () => this.reconnectSoon(0));
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = `${scheme}//${location.host}${API}/ws?access_token=${encodeURIComponent(this.client.token)}`;
    if (this.cursor !== null) url += `&cursor=${this.cursor}`;
    this.handlers.onStatus(this.attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer"; // the server sends its JSON frames as binary (UTF-8)
    this.ws = ws;
    ws.onmessage = (message) => {
      if (ws !== this.ws) return;
      this.alive();
      let frame;
      try {
        const text = typeof message.data === "string" ? message.data : decoder.decode(message.data);
        frame = JSON.parse(text);
      } catch {
        return;
      }
      this.onFrame(frame);
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      clearTimeout(this.watchdog);
      this.ws = null;
      if (this.stopped) return;
      this.handlers.onStatus(navigator.onLine === false ? "offline" : "reconnecting");
      if (event.code === 4401) {
        this.handlers.onAuthLost();
        return;
      }
      this.reconnectSoon();
    };
  }

  onFrame(frame) {
    switch (frame.type) {
      case "hello":
        this.heartbeat = frame.heartbeat_seconds || 25;
        if (this.cursor === null) this.cursor = frame.cursor;
        this.attempt = 0;
        this.handlers.onStatus("live");
        this.handlers.onConnected?.();
        break;
      case "event":
        if (frame.id !== null && frame.id !== undefined) {
          if (this.cursor !== null && frame.id <= this.cursor) return; // seen already
          this.cursor = frame.id;
        }
        this.handlers.onEvent(frame);
        break;
      case "synced":
        if (typeof frame.cursor === "number" && (this.cursor === null || frame.cursor > this.cursor)) {
          this.cursor = frame.cursor;
        }
        break;
      case "resync_required":
        this.cursor = frame.cursor;
        this.handlers.onResync();
        break;
      default:
        break;
    }
  }

  alive() {
    clearTimeout(this.watchdog);
    // Nothing heard for three heartbeats: the connection is dead even if not closed.
    this.watchdog = setTimeout(() => this.ws && this.ws.close(4000), this.heartbeat * 3000);
  }

  reconnectSoon(delay) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (this.ws) return;
    this.attempt += 1;
    const backoff = delay ?? Math.min(15000, 500 * 2 ** Math.min(this.attempt, 5)) * (0.5 + Math.random());
    this.timer = setTimeout(() => this.connect(), backoff);
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }
}
