// Building the message list. Message text is only ever set as text nodes (never as HTML),
// so nothing a visitor, an agent or a model writes can run in the page.

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'）)]+[^\s<>"'）).,;:!?，。；：！？]/g;

export function safeHref(value) {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

// Text with its http(s) links made clickable; the rest stays text.
export function linkified(text) {
  const out = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    out.append(text.slice(last, match.index));
    const href = safeHref(match[0]);
    out.append(
      href ? el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", text: match[0] }) : match[0],
    );
    last = match.index + match[0].length;
  }
  out.append(text.slice(last));
  return out;
}

// The bot's citations, numbered, once per document.
export function sourcesNode(sources, t) {
  const seen = new Set();
  const items = [];
  for (const source of sources || []) {
    const title = (source.title_path ? `${source.title} › ${source.title_path}` : source.title || "").trim();
    if (!title || seen.has(title)) continue;
    seen.add(title);
    const href = source.link ? safeHref(source.link) : null;
    const label = href ? el("a", { href, target: "_blank", rel: "noopener noreferrer", text: title }) : title;
    items.push(el("li", { class: "source" }, label));
  }
  if (!items.length) return null;
  return el("div", { class: "sources" }, el("p", { class: "sources-title", text: t("sources") }), el("ol", {}, ...items));
}

export function timeOf(iso, lang) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  return at.toLocaleTimeString(lang === "zh" ? "zh-CN" : "en", { hour: "2-digit", minute: "2-digit" });
}

// One message as a list item. ``who``: "me" | "bot" | "agent" | "system".
export function messageNode(message, { who, name, t, lang, pending, failed, onRetry }) {
  const ai = (message.data && message.data.ai) || {};
  const streaming = ai.status === "streaming";
  const text = message.recalled ? "" : message.text || "";
  if (who === "system") {
    return el("li", { class: "msg system", "data-id": message.id, "data-seq": message.seq }, el("p", { class: "notice" }, linkified(text)));
  }
  const bubble = el("div", { class: "bubble" }, el("p", { class: "text" }, linkified(text)));
  if (streaming) bubble.append(el("span", { class: "cursor", "aria-hidden": "true" }));
  if (who === "bot" && !streaming) {
    const sources = sourcesNode(ai.sources, t);
    if (sources) bubble.append(sources);
  }
  const meta = el("p", { class: "meta" }, who === "me" ? null : el("span", { class: "who", text: name }), el("time", { datetime: message.created_at, text: timeOf(message.created_at, lang) }));
  const item = el("li", {
    class: `msg ${who}${pending ? " pending" : ""}${failed ? " failed" : ""}${streaming ? " streaming" : ""}`,
    "data-id": message.id,
    "data-seq": message.seq,
  }, bubble, meta);
  if (failed) {
    item.append(el("button", { type: "button", class: "retry", text: t("send_failed"), onclick: onRetry }));
  }
  return item;
}
