// The right column: ticket facts, the bot's suggested reply, internal notes, state history.

import { clock, duration, h, replace, safeHref } from "./dom.js";
import { reasonLabel, t } from "./i18n.js";

function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value === null || value === undefined || value === "" ? t("none") : value)];
}

export function stateLabel(state) {
  return state ? t(`state_${state}`) : t("none");
}

export function renderTicketInfo(dl, convo, nameOf) {
  const ticket = convo.ticket;
  if (!ticket) {
    replace(dl, fact(t("state"), stateLabel(convo.state)));
    return;
  }
  const waited =
    ticket.state === "waiting" && ticket.queued_at
      ? (Date.now() - new Date(ticket.queued_at).getTime()) / 1000
      : null;
  replace(
    dl,
    fact(t("reason"), h("span", { class: `badge reason reason-${ticket.reason}` }, reasonLabel(ticket.reason))),
    fact(t("state"), stateLabel(ticket.state)),
    fact(t("queued_at"), `${clock(ticket.queued_at)}${waited !== null ? ` (${duration(waited)})` : ""}`),
    ticket.assignee_id ? fact(t("agent"), nameOf(ticket.assignee_id) || ticket.assignee_id) : null,
    ticket.sla_first_response_due && !ticket.first_response_at
      ? fact(t("sla"), t("sla_due", { time: clock(ticket.sla_first_response_due) }))
      : null,
    ticket.summary ? fact(t("summary"), ticket.summary) : null,
  );
}

/** `state`: {loading} | {error} | the suggestion {text, sources, grounded} | null (no ticket). */
export function renderSuggestion(container, state, onUse) {
  if (!state) {
    replace(container, h("p", { class: "muted" }, t("suggestion_none")));
    return;
  }
  if (state.loading) {
    replace(container, h("p", { class: "muted" }, "…"));
    return;
  }
  if (state.error) {
    replace(container, h("p", { class: "error" }, t("error", { message: state.error })));
    return;
  }
  if (!state.text) {
    replace(container, h("p", { class: "muted" }, t("suggestion_none")));
    return;
  }
  const sources = (state.sources || []).map((src) => {
    const label = src.title_path ? `${src.title} › ${src.title_path}` : src.title || "";
    const link = safeHref(src.link);
    return h("li", {}, link ? h("a", { href: link, target: "_blank", rel: "noopener" }, label) : label);
  });
  replace(
    container,
    h("blockquote", { class: "suggestion-text" }, state.text),
    state.grounded === false ? h("span", { class: "badge warn" }, t("not_grounded")) : null,
    sources.length
      ? h("div", { class: "sources" }, h("span", { class: "sources-label" }, t("sources")), h("ol", {}, sources))
      : null,
    h("button", { class: "btn small primary use-suggestion", onclick: () => onUse(state.text) }, t("use_suggestion")),
  );
}

export function renderNotes(list, notes, nameOf) {
  if (!notes.length) {
    replace(list, h("li", { class: "muted" }, t("no_notes")));
    return;
  }
  replace(
    list,
    notes.map((note) =>
      h(
        "li",
        { class: "note", dataset: { id: note.id } },
        h(
          "div",
          { class: "note-head" },
          h("strong", {}, (note.author && (note.author.display_name || nameOf(note.author.id))) || t("agent_label")),
          h("time", { class: "muted" }, clock(note.created_at)),
        ),
        h("div", { class: "note-text" }, note.text || ""),
      ),
    ),
  );
}

export function renderTransitions(list, transitions, nameOf) {
  replace(
    list,
    transitions.map((tr) =>
      h(
        "li",
        {},
        h("time", { class: "muted" }, clock(tr.created_at)),
        " ",
        h("span", {}, `${stateLabel(tr.from_state)} → ${stateLabel(tr.to_state)}`),
        " ",
        h("span", { class: `badge reason reason-${tr.reason}` }, reasonLabel(tr.reason)),
        tr.actor_id ? h("span", { class: "muted" }, ` · ${nameOf(tr.actor_id) || ""}`) : null,
      ),
    ),
  );
}
