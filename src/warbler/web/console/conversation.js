// The open conversation: loads it, keeps it current (WebSocket, else polling), and runs the
// agent's actions on it (pick, take over, reply, transfer, resolve, notes, save as answer).

import { api } from "./api.js";
import { Composer } from "./composer.js";
import { clientId, h, replace } from "./dom.js";
import { t } from "./i18n.js";
import { renderHeader } from "./header.js";
import { renderNotes, renderSuggestion, renderTicketInfo, renderTransitions } from "./panel.js";
import { renderTimeline, roleOf } from "./timeline.js";

const HISTORY_LIMIT = 200;
const SAFETY_SYNC_TICKS = 10; // with a live socket, still re-read the history every ~20 s

export class ConversationView {
  /** deps: {me, names, directory: {agents(), teams(), canned()}, onChanged(), showError(msg)} */
  constructor(deps) {
    Object.assign(this, deps);
    this.convo = null;
    this.live = false;
    this.ticks = 0;
    this.kbs = null;
    this.suggestionTimer = null;
    this.el = {
      empty: document.getElementById("conv-empty"),
      main: document.getElementById("conv-main"),
      header: document.getElementById("conv-header"),
      timeline: document.getElementById("timeline"),
      side: document.getElementById("side"),
      ticketInfo: document.getElementById("ticket-info"),
      suggestion: document.getElementById("suggestion"),
      notes: document.getElementById("notes"),
      noteText: document.getElementById("note-text"),
      transitions: document.getElementById("transitions"),
    };
    this.composer = new Composer({
      getCanned: () => this.directory.canned(),
      onSend: (text) => this.send(text),
    });
    document.getElementById("note-add").addEventListener("click", () => this.addNote());
    document.getElementById("suggestion-refresh").addEventListener("click", () => this.loadSuggestion());
  }

  get openId() {
    return this.convo ? this.convo.conversationId : null;
  }

  /** Am I a member, so the socket brings this conversation's events? */
  get isMember() {
    const ticket = this.convo && this.convo.ticket;
    return Boolean(ticket && ticket.assignee_id === this.me.id);
  }

  get canReply() {
    const ticket = this.convo && this.convo.ticket;
    return Boolean(ticket && ticket.state === "assigned" && ticket.assignee_id === this.me.id);
  }

  async open(target, item = {}) {
    this.names.rememberFrom(item);
    this.convo = {
      conversationId: target.conversationId,
      ticketId: target.ticketId || null,
      ticket: null,
      state: item.state || item.conversation_state || null,
      visitorId: item.visitor_id || (item.visitor && item.visitor.id) || null,
      botUserId: item.bot_user_id || null,
      messages: new Map(),
      notes: [],
      transitions: [],
      suggestion: null,
      savedAnswers: new Set(),
    };
    this.composer.clear();
    this.el.empty.hidden = true;
    this.el.main.hidden = false;
    this.el.side.hidden = false;
    this.render({ forceBottom: true });
    await this.reload({ forceBottom: true });
  }

  close() {
    this.convo = null;
    this.el.empty.hidden = false;
    this.el.main.hidden = true;
    this.el.side.hidden = true;
  }

  /** Read everything again: the ticket, the history, notes, transitions, the suggestion. */
  async reload({ forceBottom = false } = {}) {
    const convo = this.convo;
    if (!convo) return;
    const cid = encodeURIComponent(convo.conversationId);
    try {
      await this.loadTicket();
      const [history, notes, transitions] = await Promise.all([
        api("GET", `/support/conversations/${cid}/messages`, { query: { limit: HISTORY_LIMIT } }),
        api("GET", `/support/conversations/${cid}/notes`),
        convo.ticket
          ? convo.ticket.transitions
          : api("GET", `/support/conversations/${cid}/transitions`),
      ]);
      if (this.convo !== convo) return;
      this.merge(history);
      convo.notes = notes;
      convo.transitions = transitions;
    } catch (exc) {
      this.showError(exc.message);
    }
    this.render({ forceBottom });
    this.loadSuggestion();
  }

  async loadTicket() {
    const convo = this.convo;
    if (!convo.ticketId) return;
    const ticket = await api("GET", `/support/tickets/${encodeURIComponent(convo.ticketId)}`);
    if (this.convo !== convo) return;
    // The ticket, its conversation's state ({state, visitor_id, bot_user_id}), transitions.
    convo.ticket = ticket;
    this.names.rememberFrom(ticket);
    convo.state = ticket.conversation.state;
    convo.visitorId = ticket.conversation.visitor_id;
    convo.botUserId = ticket.conversation.bot_user_id;
  }

  /** Add a page of history ({messages, has_more}); true if a message is new or changed. */
  merge(history) {
    let changed = false;
    for (const m of history.messages) {
      const known = this.convo.messages.get(m.id);
      if (!known || known.text !== m.text || known.edited_at !== m.edited_at || aiStatus(known) !== aiStatus(m)) {
        changed = true;
      }
      this.convo.messages.set(m.id, m);
    }
    return changed;
  }

  sortedMessages() {
    return [...this.convo.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  /** Called every ~2 s by the console's poll loop. */
  async tick() {
    const convo = this.convo;
    if (!convo) return;
    this.ticks += 1;
    if (this.live && this.isMember && this.ticks % SAFETY_SYNC_TICKS !== 0) return;
    const cid = encodeURIComponent(convo.conversationId);
    try {
      let history;
      if (this.isMember) {
        // A member reads the ordinary history: only what is new since the last message.
        const last = this.sortedMessages().at(-1);
        history = await api("GET", `/conversations/${cid}/messages`, {
          query: { after_seq: last ? last.seq : 0, limit: HISTORY_LIMIT },
        });
      } else {
        history = await api("GET", `/support/conversations/${cid}/messages`, {
          query: { limit: HISTORY_LIMIT },
        });
      }
      if (this.convo !== convo) return;
      if (this.merge(history)) {
        this.renderMessages();
        this.maybeRefreshSuggestion();
      }
    } catch (exc) {
      if (exc.status !== 404) this.showError(exc.message);
    }
  }

  /**
   * The lists say which one holds this conversation now ("queue", "mine", "bot", "other"),
   * with its open ticket; when that changed (someone else picked it, it was resolved...),
   * read it again.
   */
  async noticePlace(place, ticketId) {
    const convo = this.convo;
    if (!convo || convo.place === place) return;
    const first = convo.place === undefined;
    convo.place = place;
    if (ticketId) convo.ticketId = ticketId;
    if (!first) await this.reload();
  }

  setLive(open) {
    this.live = open;
  }

  onEvent(frame) {
    const convo = this.convo;
    if (!convo || frame.conversation_id !== convo.conversationId) return;
    const data = frame.data || {};
    if (frame.event === "message.delta") {
      const m = convo.messages.get(data.message_id);
      if (m) {
        m.text = data.text;
        this.renderMessages();
      }
    } else if (frame.event && frame.event.startsWith("message.") && data.message) {
      convo.messages.set(data.message.id, data.message);
      this.renderMessages();
      if (roleOf(data.message, convo) === "visitor") this.maybeRefreshSuggestion();
    } else if (frame.event === "support.state_changed") {
      if (data.ticket_id) convo.ticketId = data.ticket_id;
      this.reload();
    }
  }

  // -- actions -----------------------------------------------------------------------------

  async pick() {
    const ticket = await this.act(() =>
      api("POST", `/support/tickets/${encodeURIComponent(this.convo.ticketId)}/pick`),
    );
    if (ticket) await this.reload({ forceBottom: true });
  }

  async takeover() {
    const convo = this.convo;
    const ticket = await this.act(() =>
      api("POST", `/support/conversations/${encodeURIComponent(convo.conversationId)}/takeover`),
    );
    if (ticket) {
      convo.ticketId = ticket.id; // the new ticket, assigned to me
      await this.reload({ forceBottom: true });
    }
  }

  async resolve() {
    const done = await this.act(() =>
      api("POST", `/support/tickets/${encodeURIComponent(this.convo.ticketId)}/resolve`),
    );
    if (done) await this.reload();
  }

  async transfer(target, note) {
    const [kind, id] = target.split(":");
    const body = kind === "team" ? { team_id: id } : { agent_id: id };
    if (note) body.note = note;
    const done = await this.act(() =>
      api("POST", `/support/tickets/${encodeURIComponent(this.convo.ticketId)}/transfer`, { body }),
    );
    if (done) await this.reload();
  }

  async send(text) {
    const convo = this.convo;
    try {
      const message = await api("POST", `/conversations/${encodeURIComponent(convo.conversationId)}/messages`, {
        body: { text, client_msg_id: clientId() },
      });
      convo.messages.set(message.id, message);
      this.renderMessages({ forceBottom: true });
      this.onChanged();
    } catch (exc) {
      this.showError(exc.message);
      throw exc;
    }
  }

  async addNote() {
    const text = this.el.noteText.value.trim();
    if (!text || !this.convo) return;
    const convo = this.convo;
    const note = await this.act(() =>
      api("POST", `/support/conversations/${encodeURIComponent(convo.conversationId)}/notes`, { body: { text } }),
    );
    if (note) {
      this.el.noteText.value = "";
      convo.notes = [...convo.notes, note];
      renderNotes(this.el.notes, convo.notes, (id) => this.names.get(id));
    }
  }

  async saveAnswer(message, holder) {
    if (this.kbs === null) {
      const kbs = await this.act(() => api("GET", "/kb"));
      if (!kbs) return;
      this.kbs = kbs;
    }
    if (!this.kbs.length) {
      this.showError(t("no_kb"));
      return;
    }
    const convo = this.convo;
    const save = async (kbId) => {
      try {
        await api("POST", `/support/tickets/${encodeURIComponent(convo.ticketId)}/curated`, {
          body: { kb_id: kbId, answer_message_id: message.id },
        });
      } catch (exc) {
        // Agents may save only to the support bot's knowledge bases: the refusal names them.
        const allowed = exc.status === 403 && exc.details.allowed_kb_ids;
        if (Array.isArray(allowed) && allowed.length && !allowed.includes(kbId)) {
          this.kbs = this.kbs.filter((kb) => allowed.includes(kb.id));
          if (this.kbs.length === 1) return save(this.kbs[0].id);
          if (this.kbs.length > 1) return this.saveAnswer(message, holder);
        }
        this.showError(exc.message);
        return;
      }
      convo.savedAnswers.add(message.id);
      if (this.convo === convo) this.renderMessages();
    };
    if (this.kbs.length === 1) {
      await save(this.kbs[0].id);
      return;
    }
    const select = h(
      "select",
      { class: "kb-choice", "aria-label": t("choose_kb") },
      this.kbs.map((kb) => h("option", { value: kb.id }, kb.name)),
    );
    replace(
      holder,
      select,
      h("button", { class: "btn tiny primary", onclick: () => save(select.value) }, t("save")),
      h("button", { class: "btn tiny", onclick: () => this.renderMessages() }, t("cancel")),
    );
  }

  /** Run an action; show its error instead of throwing. Returns its result, or null. */
  async act(fn) {
    try {
      const result = await fn();
      this.onChanged();
      return result ?? {};
    } catch (exc) {
      this.showError(exc.message);
      return null;
    }
  }

  // -- suggestion ----------------------------------------------------------------------------

  maybeRefreshSuggestion() {
    clearTimeout(this.suggestionTimer);
    this.suggestionTimer = setTimeout(() => this.loadSuggestion(), 800);
  }

  async loadSuggestion() {
    const convo = this.convo;
    if (!convo) return;
    const ticket = convo.ticket;
    if (!ticket || (ticket.state !== "waiting" && ticket.state !== "assigned")) {
      convo.suggestion = null;
    } else {
      convo.suggestion = { loading: true };
      this.renderSuggestion();
      try {
        convo.suggestion = await api("GET", `/support/tickets/${encodeURIComponent(ticket.id)}/suggestion`);
      } catch (exc) {
        // no_question: the visitor asked nothing yet; no_bot: no support bot to ask.
        const nothing = exc.code === "no_question" || exc.code === "no_bot";
        convo.suggestion = nothing ? { text: "" } : { error: exc.message };
      }
      if (this.convo !== convo) return;
    }
    this.renderSuggestion();
  }

  renderSuggestion() {
    const use = this.canReply ? (text) => this.composer.fill(text) : () => {};
    renderSuggestion(this.el.suggestion, this.convo && this.convo.suggestion, use);
  }

  // -- rendering -----------------------------------------------------------------------------

  render({ forceBottom = false } = {}) {
    const convo = this.convo;
    if (!convo) return;
    const nameOf = (id) => this.names.get(id);
    renderHeader(this.el.header, this);
    this.renderMessages({ forceBottom });
    renderTicketInfo(this.el.ticketInfo, convo, nameOf);
    renderNotes(this.el.notes, convo.notes, nameOf);
    renderTransitions(this.el.transitions, convo.transitions, nameOf);
    this.renderSuggestion();
    this.composer.setEnabled(this.canReply, this.canReply ? "" : t("composer_readonly"));
  }

  /** Only the timeline (a message came or changed): the header's open forms stay as they are. */
  renderMessages({ forceBottom = false } = {}) {
    const convo = this.convo;
    if (!convo) return;
    renderTimeline(this.el.timeline, this.sortedMessages(), {
      convo,
      forceBottom,
      nameOf: (id) => this.names.get(id),
      canSaveAnswer: () => Boolean(convo.ticketId),
      isSaved: (m) => convo.savedAnswers.has(m.id),
      onSaveAnswer: (m, holder) => this.saveAnswer(m, holder),
    });
  }
}

function aiStatus(message) {
  return message.data && message.data.ai ? message.data.ai.status : null;
}
