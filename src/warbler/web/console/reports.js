// The reports tab: response and resolution times, CSAT, SLA, hand-off reasons, per agent.

import { api } from "./api.js";
import { duration, h, replace } from "./dom.js";
import { reasonLabel, t } from "./i18n.js";

const PERIODS = [1, 7, 30]; // days

function since(days) {
  if (days === 1) {
    const start = new Date();
    start.setHours(0, 0, 0, 0);
    return start.toISOString();
  }
  return new Date(Date.now() - days * 86400 * 1000).toISOString();
}

function card(title, metric, value, sub) {
  return h(
    "div",
    { class: "card metric", dataset: { metric } },
    h("div", { class: "metric-title" }, title),
    h("div", { class: "metric-value" }, value),
    sub ? h("div", { class: "muted metric-sub" }, sub) : null,
  );
}

function timing(title, key, stats) {
  const s = stats || {};
  return card(
    title,
    `${key}_median`,
    duration(s.median),
    `${t("average")} ${duration(s.average)} · ${t("p90")} ${duration(s.p90)}`,
  );
}

function csatCard(csat) {
  const c = csat || {};
  const dist = c.distribution || {};
  const total = Object.values(dist).reduce((a, b) => a + Number(b || 0), 0) || 1;
  const bars = ["5", "4", "3", "2", "1"].map((score) => {
    const n = Number(dist[score] || 0);
    return h(
      "div",
      { class: "bar-row", dataset: { score } },
      h("span", { class: "bar-label" }, `${score}★`),
      h(
        "span",
        { class: "bar" },
        h("span", { class: "bar-fill", style: { width: `${Math.round((n / total) * 100)}%` } }),
      ),
      h("span", { class: "bar-count" }, String(n)),
    );
  });
  const avg = typeof c.average === "number" ? c.average.toFixed(2) : t("none");
  return h(
    "div",
    { class: "card metric csat", dataset: { metric: "csat_average" } },
    h("div", { class: "metric-title" }, t("csat")),
    h("div", { class: "metric-value" }, avg),
    h("div", { class: "muted metric-sub" }, c.count === 1 ? t("csat_count_one") : t("csat_count", { n: c.count || 0 })),
    h("div", { class: "bars" }, bars),
  );
}

function slaCard(sla) {
  const s = sla || {};
  const row = (label, key, cls) =>
    h(
      "div",
      { class: `sla-row ${cls}`, dataset: { metric: key } },
      h("span", {}, label),
      h("strong", {}, String(s[key] ?? 0)),
    );
  return h(
    "div",
    { class: "card metric sla-card" },
    h("div", { class: "metric-title" }, t("sla")),
    row(t("sla_first_met"), "first_response_met", "ok"),
    row(t("sla_first_breached"), "first_response_breached", "bad"),
    row(t("sla_res_met"), "resolution_met", "ok"),
    row(t("sla_res_breached"), "resolution_breached", "bad"),
  );
}

function reasonsCard(reasons) {
  const entries = Object.entries(reasons || {}).sort((a, b) => b[1] - a[1]);
  return h(
    "div",
    { class: "card metric reasons-card" },
    h("div", { class: "metric-title" }, t("reasons")),
    entries.length
      ? h(
          "ul",
          { class: "reason-list" },
          entries.map(([code, n]) =>
            h(
              "li",
              { dataset: { reason: code } },
              h("span", { class: `badge reason reason-${code}` }, reasonLabel(code)),
              h("strong", {}, String(n)),
            ),
          ),
        )
      : h("p", { class: "muted" }, t("none")),
  );
}

function agentsTable(agents) {
  if (!agents || !agents.length) return null;
  return h(
    "table",
    { class: "card agents-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, t("agent")),
        h("th", {}, t("resolved")),
        h("th", {}, `${t("first_response")} (${t("median")})`),
        h("th", {}, t("csat")),
      ),
    ),
    h(
      "tbody",
      {},
      agents.map((a) =>
        h(
          "tr",
          {},
          h("td", {}, a.display_name || a.agent_id),
          h("td", {}, String(a.resolved ?? 0)),
          h("td", {}, duration(a.first_response_median)),
          h("td", {}, typeof a.csat_average === "number" ? a.csat_average.toFixed(2) : t("none")),
        ),
      ),
    ),
  );
}

export class ReportsView {
  constructor(root, showError) {
    this.root = root;
    this.showError = showError;
    this.days = 7;
    this.data = null;
  }

  async load() {
    try {
      this.data = await api("GET", "/support/reports", { query: { since: since(this.days) } });
    } catch (exc) {
      this.showError(exc.message);
    }
    this.render();
  }

  render() {
    const d = this.data || {};
    const picker = h(
      "select",
      {
        id: "report-period",
        "aria-label": t("period"),
        onchange: (e) => {
          this.days = Number(e.target.value);
          this.load();
        },
      },
      PERIODS.map((n) =>
        h("option", { value: String(n), selected: n === this.days }, n === 1 ? t("today") : t("last_days", { n })),
      ),
    );
    replace(
      this.root,
      h(
        "div",
        { class: "reports-head" },
        h("h2", {}, t("reports_title")),
        picker,
        h("button", { class: "btn", onclick: () => this.load() }, t("refresh")),
      ),
      h(
        "div",
        { class: "metrics" },
        card(t("tickets"), "tickets", String(d.tickets ?? 0), `${t("resolved")} ${d.resolved ?? 0}`),
        timing(t("first_response"), "first_response", d.first_response_seconds),
        timing(t("resolution"), "resolution", d.resolution_seconds),
        csatCard(d.csat),
        slaCard(d.sla),
        reasonsCard(d.reasons),
      ),
      h("h3", {}, t("by_agent")),
      agentsTable(d.agents) || h("p", { class: "muted" }, t("none")),
    );
  }
}
