// Building DOM safely: text always goes in as text nodes, never as HTML (no XSS from messages).

import { getLang } from "./i18n.js";

/**
 * h("button", {class: "x", onclick: fn, dataset: {id: 1}}, "text", child) -> element.
 * Strings become text nodes; attributes are set with setAttribute; `href` only takes
 * http(s) URLs.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "style") Object.assign(el.style, value); // CSSOM: allowed by a strict CSP
    else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "href") {
      const safe = safeHref(value);
      if (safe) el.setAttribute("href", safe);
    } else if (name === "value") el.value = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Only http(s) links are followed (an API path as a source link needs a token: shown as text). */
export function safeHref(value) {
  const text = String(value || "");
  return /^https?:\/\//i.test(text) ? text : null;
}

/** Replace the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** 75 -> "1m 15s" / "1分15秒". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return "—";
  let s = Math.max(0, Math.round(Number(seconds)));
  const zh = getLang() === "zh";
  const d = Math.floor(s / 86400);
  const hr = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  s %= 60;
  const parts = zh
    ? [d && `${d}天`, hr && `${hr}小时`, m && `${m}分`, (s || !(d || hr || m)) && `${s}秒`]
    : [d && `${d}d`, hr && `${hr}h`, m && `${m}m`, (s || !(d || hr || m)) && `${s}s`];
  return parts.filter(Boolean).slice(0, 2).join(zh ? "" : " ");
}

/** A timestamp as local wall time (the date too when it is not today). */
export function clock(iso) {
  if (!iso) return "";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const locale = getLang() === "zh" ? "zh-CN" : "en-GB";
  const sameDay = when.toDateString() === new Date().toDateString();
  const opts = sameDay
    ? { hour: "2-digit", minute: "2-digit" }
    : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  return when.toLocaleString(locale, opts);
}

/** A random client message id, so a retried send is stored once. */
export function clientId() {
  if (crypto.randomUUID) return `console-${crypto.randomUUID()}`;
  return `console-${Date.now()}-${Math.random().toString(36).slice(2)}`;
}
