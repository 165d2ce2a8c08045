// The left column: the waiting queue, my conversations, the bot's conversations.

import { clock, duration, h, replace } from "./dom.js";
import { reasonLabel, t } from "./i18n.js";

export function visitorName(item) {
  const v = item.visitor || {};
  return v.display_name || v.username || t("visitor");
}

/**
 * What a row opens: the conversation and its ticket. Rows are queue entries (ticket_id),
 * tickets (id) or support conversations (ticket_id: the open ticket, null in state bot).
 */
export function rowTarget(kind, item) {
  const ticketId = kind === "mine" ? item.id : item.ticket_id || null;
  return { conversationId: item.conversation_id, ticketId };
}

function slaBadge(item) {
  const due = item.sla_first_response_due;
  if (!due || item.first_response_at) return null;
  const left = (new Date(due).getTime() - Date.now()) / 1000;
  if (left <= 0) return h("span", { class: "badge sla breached" }, t("sla_breached"));
  const cls = left < 120 ? "badge sla soon" : "badge sla";
  return h("span", { class: cls }, t("sla_due", { time: clock(due) }));
}

function waitedSeconds(item) {
  if (typeof item.waited_seconds === "number") return item.waited_seconds;
  if (item.queued_at) return (Date.now() - new Date(item.queued_at).getTime()) / 1000;
  return null;
}

function row(kind, item, ctx) {
  const target = rowTarget(kind, item);
  const selected = ctx.selected === target.conversationId;
  const action =
    kind === "queue"
      ? h(
          "button",
          {
            class: "btn small primary pick",
            onclick: (e) => {
              e.stopPropagation();
              ctx.onPick(target);
            },
          },
          t("pick"),
        )
      : kind === "bot"
        ? h(
            "button",
            {
              class: "btn small takeover",
              onclick: (e) => {
                e.stopPropagation();
                ctx.onTakeover(target);
              },
            },
            t("take_over"),
          )
        : null;
  const meta = [];
  if (kind === "queue" && item.position) {
    meta.push(h("span", { class: "badge position" }, t("position", { n: item.position })));
  }
  if (item.reason && kind !== "bot") {
    meta.push(
      h("span", { class: `badge reason reason-${item.reason}`, title: item.reason }, reasonLabel(item.reason)),
    );
  }
  if (kind === "queue") {
    const waited = waitedSeconds(item);
    if (waited !== null) meta.push(h("span", { class: "muted" }, t("waited", { time: duration(waited) })));
  }
  const sla = kind === "bot" ? null : slaBadge(item);
  if (sla) meta.push(sla);
  if (kind === "bot" && item.updated_at) meta.push(h("span", { class: "muted" }, clock(item.updated_at)));
  const unread = ctx.unread.has(target.conversationId);
  return h(
    "li",
    {
      class: `row${selected ? " selected" : ""}${unread ? " unread" : ""}`,
      dataset: { conversationId: target.conversationId || "", ticketId: target.ticketId || "" },
      tabindex: "0",
      onclick: () => ctx.onOpen(target, kind),
      onkeydown: (e) => {
        if (e.key === "Enter") ctx.onOpen(target, kind);
      },
    },
    h("div", { class: "row-head" }, h("strong", { class: "name" }, visitorName(item)), action),
    item.preview ? h("div", { class: "preview" }, item.preview) : null,
    meta.length ? h("div", { class: "row-meta" }, meta) : null,
  );
}

/**
 * Render one list. `ctx`: {selected, unread: Set, onOpen(target, kind), onPick(target),
 * onTakeover(target)}.
 */
export function renderList(container, kind, items, ctx) {
  const counter = document.querySelector(`[data-count="${kind}"]`);
  if (counter) counter.textContent = String(items.length);
  if (!items.length) {
    replace(container, h("li", { class: "empty" }, t(`empty_${kind}`)));
    return;
  }
  replace(container, items.map((item) => row(kind, item, ctx)));
}
