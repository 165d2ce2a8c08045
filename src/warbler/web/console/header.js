// The open conversation's header: who, its state and reason, and what I can do with it now
// (pick, take over, transfer, resolve).

import { h, replace } from "./dom.js";
import { reasonLabel, t } from "./i18n.js";
import { stateLabel } from "./panel.js";

/** `view`: the ConversationView (its convo, me, names, directory and actions). */
export function renderHeader(el, view) {
  const { convo, me, names } = view;
  const ticket = convo.ticket;
  const state = convo.state || (ticket && ticket.state);
  const actions = h("div", { class: "conv-actions" });
  if (state === "waiting" && ticket) {
    actions.append(h("button", { class: "btn primary pick", onclick: () => view.pick() }, t("pick")));
  } else if (view.canReply) {
    actions.append(
      transferForm(view),
      h("button", { class: "btn resolve", onclick: () => view.resolve() }, t("resolve")),
    );
  } else if (state === "bot" || state === "resolved") {
    actions.append(h("button", { class: "btn takeover", onclick: () => view.takeover() }, t("take_over")));
  }
  const assignee =
    ticket && ticket.state === "assigned"
      ? t("assigned_to", { name: ticket.assignee_id === me.id ? t("you") : names.get(ticket.assignee_id) || "" })
      : null;
  replace(
    el,
    h(
      "div",
      { class: "conv-title" },
      h("strong", {}, names.get(convo.visitorId) || t("visitor")),
      h("span", { class: `badge state state-${state}`, dataset: { state: state || "" } }, stateLabel(state)),
      ticket ? h("span", { class: `badge reason reason-${ticket.reason}` }, reasonLabel(ticket.reason)) : null,
      assignee ? h("span", { class: "muted" }, assignee) : null,
    ),
    actions,
  );
}

/** Transfer to another agent (with their availability) or a team, with an optional note. */
function transferForm(view) {
  const agents = view.directory.agents().filter((a) => a.user_id !== view.me.id);
  const teams = view.directory.teams();
  const select = h(
    "select",
    { class: "transfer-target", "aria-label": t("transfer_to") },
    h("option", { value: "" }, t("transfer_to")),
    agents.length
      ? h(
          "optgroup",
          { label: t("agents_group") },
          agents.map((a) =>
            h("option", { value: `agent:${a.user_id}` }, `${a.display_name} · ${t(`status_${a.status}`)}`),
          ),
        )
      : null,
    teams.length
      ? h(
          "optgroup",
          { label: t("teams_group") },
          teams.map((team) => h("option", { value: `team:${team.id}` }, team.name)),
        )
      : null,
  );
  // The note and the button appear once a target is chosen: the header stays one line.
  const note = h("input", { class: "transfer-note", placeholder: t("transfer_note"), maxlength: "2000", hidden: true });
  const button = h(
    "button",
    {
      class: "btn primary transfer",
      hidden: true,
      onclick: () => {
        if (select.value) view.transfer(select.value, note.value.trim());
      },
    },
    t("transfer"),
  );
  select.addEventListener("change", () => {
    note.hidden = button.hidden = !select.value;
  });
  return h("div", { class: "transfer-form" }, select, note, button);
}
