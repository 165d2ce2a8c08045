// The chat panel inside the widget's iframe: session, history, live updates, sending,
// the status banner and the CSAT card. Talks to the host page only through postMessage.

import { ApiError, Client, Live } from "./client.js";
import { pickLang, translator } from "./i18n.js";
import { messageNode } from "./render.js";
import { bannerText, csatCard } from "./support.js";

const params = new URLSearchParams(location.search);
const widgetId = params.get("w") || "";
const lang = pickLang(params.get("lang"));
const t = translator(lang);
const embedded = window.parent !== window;
const $ = (id) => document.getElementById(id);

const client = new Client(widgetId, lang);
const state = {
  config: null,
  me: null,
  bot: null,
  conversationId: null,
  identityToken: null,
  messages: new Map(), // id -> message
  nodes: new Map(), // id or "pending:<client id>" -> <li>
  pending: new Map(), // client id -> {text, failed}
  support: null,
  csatShown: null,
  hasMore: false,
  visible: !embedded,
  unread: 0,
  live: null,
  typingTimer: null,
};

// -- talking to the host page (the loader, /widget.js) ------------------------------------

function toParent(message) {
  if (embedded) window.parent.postMessage({ source: "warbler", ...message }, "*");
}

function fromParent(handler) {
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || !event.data || event.data.source !== "warbler-host") return;
    handler(event.data);
  });
}

// The host answers "ready" with "init" (and any identity token it was given); a page with no
// loader never does, so the wait is bounded.
function hostInit() {
  if (!embedded) return Promise.resolve({});
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({}), 3000);
    fromParent((data) => {
      if (data.type === "init") {
        clearTimeout(timer);
        resolve(data);
      } else if (data.type === "identify" && data.token && data.token !== state.identityToken) {
        start(data.token);
      } else if (data.type === "visibility") {
        state.visible = Boolean(data.open);
        if (state.visible) {
          state.unread = 0;
          toParent({ type: "unread", count: 0 });
          if (!matchMedia("(pointer: coarse)").matches) $("input").focus();
          scrollToEnd(true);
        }
      }
    });
    toParent({ type: "ready" });
  });
}

// -- boot -----------------------------------------------------------------------------

function staticTexts() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  $("title").textContent = t("title");
  $("close").setAttribute("aria-label", t("close"));
  $("close").hidden = !embedded;
  $("input").placeholder = t("placeholder");
  $("send").setAttribute("aria-label", t("send"));
  $("human").textContent = t("talk_to_human");
  $("older").textContent = t("load_older");
}

async function boot() {
  staticTexts();
  $("close").addEventListener("click", () => toParent({ type: "close" }));
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    sendText($("input").value);
  });
  $("input").addEventListener("keydown", onKeyDown);
  $("input").addEventListener("input", autosize);
  $("human").addEventListener("click", () => sendText(t("human_phrase")));
  $("older").addEventListener("click", loadOlder);
  setComposer(false);
  try {
    state.config = await client.config();
  } catch (err) {
    fail(err);
    return;
  }
  const { config } = state;
  document.title = config.title;
  $("title").textContent = config.title;
  $("greeting").textContent = config.greeting;
  $("greeting").hidden = !config.greeting;
  if (/^#[0-9a-fA-F]{3,8}$/.test(config.color || "")) {
    document.documentElement.style.setProperty("--accent", config.color);
  }
  const init = await hostInit();
  toParent({ type: "config", color: config.color, title: config.title });
  if (init.open !== undefined) state.visible = Boolean(init.open);
  if (init.identityToken) return start(init.identityToken);
  if (config.identity_required) {
    notice(t("identity_needed"));
    return;
  }
  return start(null);
}

async function start(identityToken) {
  if (state.live) state.live.stop();
  state.identityToken = identityToken;
  state.messages.clear();
  state.pending.clear();
  state.nodes.clear();
  $("messages").replaceChildren();
  try {
    const session = await client.start(identityToken);
    state.me = session.user;
    state.bot = session.bot || null;
    state.conversationId = session.conversation_id;
  } catch (err) {
    fail(err);
    return;
  }
  notice("");
  setComposer(true);
  state.live = new Live(client, {
    onEvent,
    onStatus: connectionStatus,
    onConnected: () => {
      loadHistory();
      refreshSupport();
      retryFailed();
    },
    onResync: () => loadHistory(),
    onAuthLost: () => start(state.identityToken),
  });
  state.live.start();
}

function fail(err) {
  const unavailable = !(err instanceof ApiError) || err.status === 404 || err.status >= 500 || err.status === 0;
  notice(unavailable ? t("unavailable") : err.code === "identity_required" ? t("identity_needed") : err.message);
  setComposer(false);
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

function setComposer(enabled) {
  $("input").disabled = !enabled;
  $("send").disabled = !enabled;
}

function connectionStatus(status) {
  const text = { live: "", connecting: t("connecting"), reconnecting: t("reconnecting"), offline: t("offline") }[status];
  $("conn").textContent = text || "";
  $("conn").hidden = !text;
}

// -- history and live events -----------------------------------------------------------

async function loadHistory() {
  const id = state.conversationId;
  try {
    const page = await client.request("GET", `/conversations/${id}/messages?limit=50`);
    if (id !== state.conversationId) return;
    state.hasMore = page.has_more;
    $("older").hidden = !state.hasMore;
    page.messages.forEach((m) => upsert(m, { fromHistory: true }));
    scrollToEnd(true);
  } catch (err) {
    if (err.status !== 401) notice(err.message);
  }
}

async function loadOlder() {
  const seqs = [...state.messages.values()].map((m) => m.seq);
  if (!seqs.length) return;
  const scroll = $("scroll");
  const before = scroll.scrollHeight - scroll.scrollTop;
  const page = await client.request("GET", `/conversations/${state.conversationId}/messages?limit=50&before_seq=${Math.min(...seqs)}`);
  page.messages.forEach((m) => upsert(m, { fromHistory: true }));
  state.hasMore = page.has_more;
  $("older").hidden = !state.hasMore;
  scroll.scrollTop = scroll.scrollHeight - before;
}

function onEvent(frame) {
  if (frame.conversation_id && frame.conversation_id !== state.conversationId) return;
  const data = frame.data || {};
  switch (frame.event) {
    case "message.new":
    case "message.edited":
    case "message.recalled":
    case "message.completed":
      upsert(data.message, { live: frame.event === "message.new" });
      break;
    case "message.delta": {
      const known = state.messages.get(data.message_id);
      if (known) upsert({ ...known, text: data.text });
      break;
    }
    case "typing":
      if (data.user_id !== state.me.id) showTyping(data.state !== "stopped");
      break;
    case "support.state_changed":
      state.support = { ...(state.support || {}), state: data.state };
      refreshSupport();
      break;
    case "support.position_changed":
    case "member.added":
    case "member.removed":
      refreshSupport();
      break;
    default:
      break;
  }
}

function whoSent(message) {
  if (message.kind === "system" || !message.sender_id) return "system";
  if (message.sender_id === state.me.id) return "me";
  if (state.bot ? message.sender_id === state.bot.id : (message.data && message.data.ai)) return "bot";
  return "agent";
}

function nameOf(message, who) {
  if (who === "bot") return (state.bot && state.bot.display_name) || t("assistant");
  const assignee = state.support && state.support.ticket && state.support.ticket.assignee;
  if (assignee && assignee.id === message.sender_id) return assignee.display_name;
  return t("agent");
}

function upsert(message, { fromHistory = false, live = false } = {}) {
  if (!message || message.conversation_id !== state.conversationId) return;
  const known = state.messages.get(message.id);
  // History read before a live completion must not bring a streaming text back.
  if (fromHistory && known && known.data?.ai?.status !== "streaming" && message.data?.ai?.status === "streaming") return;
  state.messages.set(message.id, message);
  if (message.client_msg_id && state.pending.has(message.client_msg_id)) {
    state.pending.delete(message.client_msg_id);
    removeNode(`pending:${message.client_msg_id}`);
  }
  const who = whoSent(message);
  if (who !== "me") showTyping(false);
  place(message.id, messageNode(message, { who, name: nameOf(message, who), t, lang }), message.seq);
  if (live && who !== "me" && !state.visible) {
    state.unread += 1;
    toParent({ type: "unread", count: state.unread });
  }
}

function removeNode(key) {
  const node = state.nodes.get(key);
  if (node) node.remove();
  state.nodes.delete(key);
}

// Put ``node`` for ``key`` in seq order (pending sends stay last), keeping the view pinned to
// the newest message when it was there already.
function place(key, node, seq) {
  const stick = nearEnd();
  const list = $("messages");
  const old = state.nodes.get(key);
  state.nodes.set(key, node);
  if (old) old.replaceWith(node);
  else if (seq === undefined) list.append(node);
  else {
    const after = [...list.children].find((li) => !li.dataset.seq || Number(li.dataset.seq) > seq);
    list.insertBefore(node, after || null);
  }
  if (stick) scrollToEnd(true);
}

function nearEnd() {
  const s = $("scroll");
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

function scrollToEnd(force) {
  if (force || nearEnd()) $("scroll").scrollTop = $("scroll").scrollHeight;
}

function showTyping(on) {
  clearTimeout(state.typingTimer);
  $("typing").textContent = on ? t("typing") : "";
  $("typing").hidden = !on;
  if (on) state.typingTimer = setTimeout(() => showTyping(false), 6000);
}

// -- sending -----------------------------------------------------------------------------

function onKeyDown(event) {
  // Enter sends, Shift+Enter is a new line; never while an IME is composing (pinyin...).
  if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
  event.preventDefault();
  sendText($("input").value);
}

function autosize() {
  const input = $("input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 120)}px`;
}

function clientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "w-" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function sendText(raw) {
  const text = raw.trim();
  if (!text || !state.conversationId) return;
  $("input").value = "";
  autosize();
  post(clientId(), text);
}

async function post(cid, text) {
  state.pending.set(cid, { text, failed: false });
  drawPending(cid);
  try {
    const message = await client.request("POST", `/conversations/${state.conversationId}/messages`, { text, client_msg_id: cid });
    upsert(message);
  } catch (err) {
    if (!state.pending.has(cid)) return;
    state.pending.get(cid).failed = true;
    if (err.status === 429) notice(t("too_fast"));
    else if (err.status && err.status !== 401) notice(err.message);
    drawPending(cid);
  }
}

function drawPending(cid) {
  const item = state.pending.get(cid);
  const draft = { id: `pending:${cid}`, text: item.text, created_at: new Date().toISOString(), data: null };
  const node = messageNode(draft, {
    who: "me", name: t("you"), t, lang, pending: !item.failed, failed: item.failed,
    onRetry: () => { notice(""); post(cid, item.text); },
  });  // prettier-ignore
  place(`pending:${cid}`, node, undefined);
  scrollToEnd(true);
}

function retryFailed() {
  for (const [cid, item] of state.pending) if (item.failed) post(cid, item.text);
}

// -- the banner and CSAT ---------------------------------------------------------------

let refreshing = null;
function refreshSupport() {
  // One request at a time; events that arrive meanwhile fold into the next one.
  if (refreshing) {
    refreshing.again = true;
    return;
  }
  refreshing = { again: false };
  client
    .request("GET", "/support/me")
    .then((support) => {
      state.support = support;
      drawSupport();
    })
    .catch(() => {})
    .finally(() => {
      const again = refreshing.again;
      refreshing = null;
      if (again) refreshSupport();
    });
}

function drawSupport() {
  const support = state.support;
  const text = bannerText(support, t, lang);
  $("banner").textContent = text;
  $("banner").hidden = !text;
  $("banner").dataset.state = (support && support.state) || "";
  $("human").hidden = !support || !["bot", "resolved"].includes(support.state);
  const pending = support && support.csat_pending;
  if (pending && state.csatShown !== pending) {
    state.csatShown = pending;
    const card = csatCard(pending, {
      t,
      submit: async (score, comment) => {
        const body = comment ? { score, comment } : { score };
        try {
          await client.request("POST", `/support/tickets/${pending}/csat`, body);
        } catch (err) {
          if (err.status !== 409) throw err; // 409: already rated (another tab)
        }
      },
    });
    $("csat").replaceChildren(card);
    $("csat").hidden = false;
    scrollToEnd(true);
  } else if (!pending && state.csatShown && !$("csat").querySelector(".csat-thanks")) {
    $("csat").hidden = true;
    state.csatShown = null;
  }
}

boot();
