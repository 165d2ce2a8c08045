// The conversation's messages: the visitor, the bot (with its sources), agents, system notices.

import { clock, h, replace, safeHref } from "./dom.js";
import { t } from "./i18n.js";

/** Who wrote a message, from the console's point of view. */
export function roleOf(message, convo) {
  if (message.kind === "system") return "system";
  if (message.sender_id && message.sender_id === convo.visitorId) return "visitor";
  if ((message.data && message.data.ai) || (convo.botUserId && message.sender_id === convo.botUserId)) {
    return "bot";
  }
  return message.sender_id ? "agent" : "system";
}

function sources(message) {
  const list = (message.data && message.data.ai && message.data.ai.sources) || [];
  if (!list.length) return null;
  return h(
    "div",
    { class: "sources" },
    h("span", { class: "sources-label" }, t("sources")),
    h(
      "ol",
      {},
      list.map((src) => {
        const label = src.title_path ? `${src.title} › ${src.title_path}` : src.title || src.kb_id;
        const link = safeHref(src.link);
        return h("li", {}, link ? h("a", { href: link, target: "_blank", rel: "noopener" }, label) : label);
      }),
    ),
  );
}

function notGrounded(message) {
  const ai = message.data && message.data.ai;
  // The engine's outcomes: answered, fallback, curated, no_answer, apology (ai/engine.py).
  if (!ai || (ai.outcome !== "no_answer" && ai.outcome !== "apology")) return null;
  return h("span", { class: "badge warn" }, t("not_grounded"));
}

/**
 * One message as an element. `ctx`: {convo, nameOf(id), canSaveAnswer(message),
 * onSaveAnswer(message, holder)}.
 */
export function messageElement(message, ctx) {
  const role = roleOf(message, ctx.convo);
  if (role === "system") {
    return h(
      "li",
      { class: "msg system", dataset: { id: message.id, seq: message.seq } },
      h("span", { class: "system-text" }, message.text || ""),
      h("time", { class: "muted" }, clock(message.created_at)),
    );
  }
  const who =
    role === "visitor"
      ? ctx.nameOf(message.sender_id) || t("visitor")
      : ctx.nameOf(message.sender_id) || t(role === "bot" ? "bot_label" : "agent_label");
  const tag = t(role === "bot" ? "bot_label" : role === "visitor" ? "visitor" : "agent_label");
  const actions = h("div", { class: "msg-actions" });
  if (role === "agent" && ctx.isSaved(message)) {
    actions.appendChild(h("span", { class: "badge ok saved-answer" }, `✓ ${t("saved_answer")}`));
  } else if (role === "agent" && message.text && ctx.canSaveAnswer(message)) {
    actions.appendChild(
      h(
        "button",
        { class: "btn tiny save-answer", onclick: () => ctx.onSaveAnswer(message, actions) },
        t("save_answer"),
      ),
    );
  }
  return h(
    "li",
    { class: `msg ${role}`, dataset: { id: message.id, seq: message.seq, role } },
    h(
      "div",
      { class: "msg-head" },
      h("span", { class: `role-tag ${role}` }, tag),
      h("strong", {}, who),
      h("time", { class: "muted" }, clock(message.created_at)),
      role === "bot" ? notGrounded(message) : null,
    ),
    h("div", { class: "msg-text" }, message.recalled ? "…" : message.text || ""),
    role === "bot" ? sources(message) : null,
    actions.childNodes.length ? actions : null,
  );
}

/** Redraw the whole timeline, keeping the reader at the bottom if they were there. */
export function renderTimeline(list, messages, ctx) {
  const scroller = list.parentElement;
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  replace(list, messages.map((m) => messageElement(m, ctx)));
  if (atBottom || ctx.forceBottom) scroller.scrollTop = scroller.scrollHeight;
}
