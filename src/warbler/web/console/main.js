// The agent console: sign-in, availability, the three lists (polled), the open conversation
// (live over the WebSocket), reports.

import { api, Live, session, setUnauthorizedHandler } from "./api.js";
import { ConversationView } from "./conversation.js";
import { applyStatic, getLang, setLang, t } from "./i18n.js";
import { renderList, rowTarget } from "./lists.js";
import { Names } from "./names.js";
import { ReportsView } from "./reports.js";

const POLL_MS = 2000;
const DIRECTORY_MS = 30000;
const AGENT_ROLES = new Set(["agent", "admin", "owner"]);
const TENANT_KEY = "warbler.console.tenant";

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  lists: { queue: [], mine: [], bot: [] },
  unread: new Set(),
  agents: [],
  teams: [],
  canned: [],
  pollTimer: null,
  directoryTimer: null,
  polling: false,
  tab: "inbox",
};

const names = new Names(() => rerender());
let view = null;
let reports = null;
let live = null;
let errorTimer = null;

function showError(message) {
  const el = $("app-error");
  el.textContent = t("error", { message });
  el.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => (el.hidden = true), 6000);
}

// -- sign-in --------------------------------------------------------------------------------

function showLogin(message = "") {
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  const error = $("login-error");
  error.textContent = message;
  error.hidden = !message;
  $("login-tenant").value = $("login-tenant").value || localStorage.getItem(TENANT_KEY) || "";
  ($("login-tenant").value ? $("login-username") : $("login-tenant")).focus();
}

async function submitLogin(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const tenant = String(form.get("tenant") || "").trim();
  try {
    const token = await api("POST", "/auth/login", {
      auth: false,
      body: {
        tenant,
        username: String(form.get("username") || "").trim(),
        password: String(form.get("password") || ""),
        device: "agent console",
      },
    });
    localStorage.setItem(TENANT_KEY, tenant);
    session.save({ access_token: token.access_token, user_id: token.user_id, tenant });
    $("login-password").value = "";
    await startApp();
  } catch (exc) {
    showLogin(exc.status === 401 || exc.status === 422 ? t("login_failed") : t("error", { message: exc.message }));
  }
}

async function signOut(message = "") {
  stopApp();
  if (session.load()) {
    await api("PUT", "/support/agents/me", { body: { status: "offline" } }).catch(() => {});
    await api("POST", "/auth/logout").catch(() => {});
  }
  session.clear();
  showLogin(message);
}

// -- the app --------------------------------------------------------------------------------

async function startApp() {
  let me;
  try {
    me = await api("GET", "/users/me");
  } catch {
    session.clear();
    showLogin();
    return;
  }
  if (!AGENT_ROLES.has(me.role)) {
    await signOut(t("not_agent"));
    return;
  }
  state.me = me;
  names.remember(me.id, me.display_name);
  $("me-name").textContent = me.display_name || me.username;
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  view.me = me;
  applyStatic(document);
  await setStatus("online"); // opening the console makes the agent available
  live = new Live(onLiveEvent, (open) => {
    view.setLive(open);
    $("live-state").textContent = open ? t("live") : t("polling");
    $("live-state").className = `badge ${open ? "ok" : "muted"}`;
  });
  live.start();
  $("live-state").textContent = t("polling");
  await Promise.all([loadDirectory(), poll()]);
  state.pollTimer = setInterval(poll, POLL_MS);
  state.directoryTimer = setInterval(loadDirectory, DIRECTORY_MS);
}

function stopApp() {
  clearInterval(state.pollTimer);
  clearInterval(state.directoryTimer);
  if (live) live.stop();
  live = null;
  if (view) view.close();
  state.me = null;
  state.unread.clear();
  state.lists = { queue: [], mine: [], bot: [] };
}

async function setStatus(status) {
  try {
    const agent = await api("PUT", "/support/agents/me", { body: { status } });
    showAgent(agent);
  } catch (exc) {
    showError(exc.message);
  }
}

function showAgent(agent) {
  if (!agent) return;
  if (agent.status) $("availability").value = agent.status;
  if (agent.capacity !== undefined) {
    $("my-load").textContent = t("load", { open: agent.open_count ?? 0, capacity: agent.capacity });
  }
}

/** Agents, teams and canned replies: for names, the transfer menu and "/" shortcuts. */
async function loadDirectory() {
  const [agents, teams, canned] = await Promise.all([
    api("GET", "/support/agents").catch(() => null),
    api("GET", "/support/teams").catch(() => null),
    api("GET", "/support/canned").catch(() => null),
  ]);
  if (agents) {
    state.agents = agents;
    for (const a of agents) names.remember(a.user_id, a.display_name);
  }
  if (teams) state.teams = teams;
  if (canned) state.canned = canned;
}

/** Read the three lists and my load; keep the open conversation current. */
async function poll() {
  if (state.polling || !state.me) return;
  state.polling = true;
  try {
    const [queue, mine, bot, agent] = await Promise.all([
      api("GET", "/support/queue"),
      api("GET", "/support/tickets", { query: { state: "assigned", assignee_id: "me" } }),
      api("GET", "/support/conversations", { query: { state: "bot" } }),
      api("GET", "/support/agents/me").catch(() => null),
    ]);
    state.lists = { queue, mine, bot };
    for (const list of Object.values(state.lists)) list.forEach((item) => names.rememberFrom(item));
    if (agent && document.activeElement !== $("availability")) showAgent(agent);
    renderLists();
    if (view && view.openId && !document.hidden) {
      const [place, item] = placeOf(view.openId);
      await view.noticePlace(place, item ? rowTarget(place, item).ticketId : null);
      await view.tick();
    }
  } catch (exc) {
    if (exc.status !== 401) showError(exc.message);
  } finally {
    state.polling = false;
  }
}

function placeOf(conversationId) {
  for (const kind of ["queue", "mine", "bot"]) {
    const item = state.lists[kind].find((i) => rowTarget(kind, i).conversationId === conversationId);
    if (item) return [kind, item];
  }
  return ["other", null];
}

function renderLists() {
  const ctx = {
    selected: view && view.openId,
    unread: state.unread,
    onOpen: (target, kind) => openConversation(target, kind),
    onPick: (target) => pickFromList(target),
    onTakeover: (target) => takeoverFromList(target),
  };
  renderList($("queue-list"), "queue", state.lists.queue, ctx);
  renderList($("mine-list"), "mine", state.lists.mine, ctx);
  renderList($("bot-list"), "bot", state.lists.bot, ctx);
}

function itemOf(kind, conversationId) {
  return state.lists[kind].find((i) => rowTarget(kind, i).conversationId === conversationId) || {};
}

async function openConversation(target, kind) {
  state.unread.delete(target.conversationId);
  showTab("inbox");
  const opening = view.open(target, itemOf(kind, target.conversationId));
  renderLists();
  await opening;
}

async function pickFromList(target) {
  try {
    await api("POST", `/support/tickets/${encodeURIComponent(target.ticketId)}/pick`);
  } catch (exc) {
    showError(exc.message);
    return;
  }
  await openConversation(target, "queue");
  poll();
}

async function takeoverFromList(target) {
  let ticket;
  try {
    ticket = await api("POST", `/support/conversations/${encodeURIComponent(target.conversationId)}/takeover`);
  } catch (exc) {
    showError(exc.message);
    return;
  }
  const ticketId = ticket.id; // takeover answers the new ticket, assigned to me
  await openConversation({ conversationId: target.conversationId, ticketId }, "bot");
  poll();
}

function onLiveEvent(frame) {
  if (frame.event === "resync") {
    poll();
    if (view.openId) view.reload();
    return;
  }
  view.onEvent(frame);
  const conv = frame.conversation_id;
  if (frame.event === "support.state_changed" || frame.event === "support.handoff_requested") {
    poll();
  } else if (frame.event === "message.new" && conv && conv !== view.openId) {
    const sender = frame.data && frame.data.message && frame.data.message.sender_id;
    if (sender !== state.me.id) {
      state.unread.add(conv);
      renderLists();
    }
  }
}

// -- tabs, language ---------------------------------------------------------------------------

function showTab(tab) {
  state.tab = tab;
  for (const el of document.querySelectorAll(".tab")) el.classList.toggle("active", el.dataset.tab === tab);
  $("inbox-view").hidden = tab !== "inbox";
  $("reports-view").hidden = tab !== "reports";
  if (tab === "reports") reports.load();
}

function rerender() {
  if (!state.me) return;
  renderLists();
  if (view && view.openId) view.render();
}

function toggleLanguage() {
  setLang(getLang() === "zh" ? "en" : "zh");
  applyStatic(document);
  rerender();
  if (reports && state.tab === "reports") reports.render();
}

function init() {
  view = new ConversationView({
    me: null,
    names,
    directory: { agents: () => state.agents, teams: () => state.teams, canned: () => state.canned },
    onChanged: () => poll(),
    showError,
  });
  reports = new ReportsView($("reports-view"), showError);
  applyStatic(document);
  setUnauthorizedHandler(() => {
    if (state.me) signOut(t("session_expired"));
  });
  $("login-form").addEventListener("submit", submitLogin);
  $("logout").addEventListener("click", () => signOut());
  $("availability").addEventListener("change", (e) => setStatus(e.target.value));
  for (const el of document.querySelectorAll(".lang-toggle")) el.addEventListener("click", toggleLanguage);
  for (const el of document.querySelectorAll(".tab")) el.addEventListener("click", () => showTab(el.dataset.tab));
  if (session.load()) startApp();
  else showLogin();
}

init();
