// What the visitor is told about the people behind the chat: the status banner (queue
// position and wait, office hours, the agent's name) and the satisfaction (CSAT) card.

import { formatWhen } from "./i18n.js";
import { el } from "./render.js";

// The banner's text for GET /support/me, or "" for none (the bot is answering).
export function bannerText(support, t, lang) {
  if (!support) return "";
  const ticket = support.ticket;
  const office = support.office || {};
  if (support.state === "waiting") {
    if (office.open === false) {
      const when = office.next_open_at ? formatWhen(office.next_open_at, lang) : "";
      return when ? t("closed_until", { when }) : t("closed");
    }
    if (ticket && ticket.position) {
      const seconds = ticket.expected_wait_seconds;
      if (seconds) return t("queued_wait", { position: ticket.position, minutes: Math.max(1, Math.round(seconds / 60)) });
      return t("queued", { position: ticket.position });
    }
    return t("queued_next");
  }
  if (support.state === "assigned") {
    const agent = ticket && ticket.assignee ? ticket.assignee.display_name : t("agent");
    return t("assigned", { agent });
  }
  if (support.state === "resolved") return t("resolved");
  return "";
}

// The CSAT card for ticket ``ticketId``: 1-5 stars, an optional comment, then thanks.
export function csatCard(ticketId, { t, submit }) {
  let score = 0;
  const stars = [1, 2, 3, 4, 5].map((n) =>
    el("button", {
      type: "button",
      class: "star",
      role: "radio",
      "aria-checked": "false",
      "aria-label": t("csat_star", { n }),
      "data-score": n,
      text: "★",
      onclick: () => choose(n),
    }),
  );
  const comment = el("textarea", { class: "csat-comment", rows: 2, maxlength: 1000, placeholder: t("csat_comment") });
  const send = el("button", { type: "button", class: "csat-send", disabled: true, text: t("csat_send") });
  const error = el("p", { class: "csat-error", role: "alert", hidden: true });
  const card = el(
    "div",
    { class: "csat-card", "data-ticket": ticketId },
    el("p", { class: "csat-title", id: "csat-title", text: t("csat_title") }),
    el("div", { class: "stars", role: "radiogroup", "aria-labelledby": "csat-title" }, ...stars),
    comment,
    send,
    error,
  );

  function choose(n) {
    score = n;
    stars.forEach((star, i) => {
      star.classList.toggle("on", i < n);
      star.setAttribute("aria-checked", String(i + 1 === n));
    });
    send.disabled = false;
  }

  send.addEventListener("click", async () => {
    if (!score) return;
    send.disabled = true;
    error.hidden = true;
    try {
      await submit(score, comment.value.trim());
      card.replaceChildren(el("p", { class: "csat-thanks", text: t("csat_thanks") }));
    } catch (err) {
      error.textContent = err.message || t("unavailable");
      error.hidden = false;
      send.disabled = false;
    }
  });
  return card;
}
