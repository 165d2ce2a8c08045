/*! Warbler web widget loader: <script src="https://HOST/widget.js" data-widget="ID" async></script>
 *
 * Adds a launcher button and, when it is opened, an iframe with the chat (HOST/widget/frame).
 * Everything lives in a shadow root, so the site's CSS cannot reach it and its CSS
 * cannot reach the site. The only global is window.Warbler: open(), close(), toggle(),
 * isOpen(), identify(token) (a visitor identity token signed by the site's backend).
 * Optional attributes: data-lang="zh|en", data-color="#2563eb", data-identity-token="…".
 */
(function () {
  "use strict";
  if (window.Warbler && window.Warbler.version) return; // loaded twice

  var script = document.currentScript;
  if (!script || !script.getAttribute("data-widget")) {
    script = document.querySelector("script[data-widget][src*='widget.js']");
  }
  if (!script) return;
  var widgetId = script.getAttribute("data-widget");
  var origin = new URL(script.src, location.href).origin;
  var lang = script.getAttribute("data-lang") || "";
  var identityToken = script.getAttribute("data-identity-token") || null;
  var openKey = "warbler:open:" + widgetId;
  var colorKey = "warbler:color:" + widgetId;

  function stored(area, key, value) {
    try {
      var store = window[area];
      if (value === undefined) return store.getItem(key);
      if (value === null) store.removeItem(key);
      else store.setItem(key, value);
    } catch (e) {
      return null; // storage blocked: the widget still works, it just forgets
    }
    return null;
  }

  var color = script.getAttribute("data-color") || stored("localStorage", colorKey) || "#2563eb";
  if (!/^#[0-9a-fA-F]{3,8}$/.test(color)) color = "#2563eb";
  var isZh = (lang || navigator.language || "").toLowerCase().indexOf("zh") === 0;
  var labels = isZh
    ? { open: "打开在线客服", close: "关闭在线客服", frame: "在线客服" }
    : { open: "Open chat", close: "Close chat", frame: "Chat" };

  var CSS =
    ":host{all:initial}" +
    ".launcher{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border:0;border-radius:50%;" +
    "background:var(--warbler-accent);color:#fff;cursor:pointer;display:flex;align-items:center;" +
    "justify-content:center;box-shadow:0 6px 20px rgba(0,0,0,.22);padding:0;margin:0;z-index:2}" +
    ".launcher:focus-visible{outline:3px solid rgba(37,99,235,.45);outline-offset:2px}" +
    ".launcher svg{width:26px;height:26px;display:block}" +
    ".badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;border-radius:10px;" +
    "background:#dc2626;color:#fff;font:600 12px/20px system-ui,sans-serif;text-align:center;padding:0 5px;box-sizing:border-box}" +
    ".panel{position:fixed;right:20px;bottom:88px;width:380px;height:640px;max-height:calc(100vh - 108px);" +
    "border-radius:14px;overflow:hidden;box-shadow:0 12px 40px rgba(0,0,0,.25);background:#fff;display:none;z-index:1}" +
    ".panel.open{display:block}" +
    "iframe{border:0;width:100%;height:100%;display:block;color-scheme:normal}" +
    "@media (max-width:480px){.panel{right:0;bottom:0;left:0;top:0;width:100%;height:100%;max-height:none;border-radius:0}" +
    ".panel.open~.launcher{display:none}}";

  var host = document.createElement("warbler-widget");
  var pin = {
    all: "initial", position: "fixed", right: "0", bottom: "0", width: "0", height: "0",
    display: "block", "z-index": "2147483000", "--warbler-accent": color,
  };
  // CSSOM writes (not style="…"), so a strict style-src on the site does not block them.
  Object.keys(pin).forEach(function (name) {
    host.style.setProperty(name, pin[name], "important");
  });
  var root = host.attachShadow({ mode: "open" });
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    var style = document.createElement("style");
    style.textContent = CSS;
    root.appendChild(style);
  }

  var SVG = "http://www.w3.org/2000/svg";
  function icon(path) {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    var p = document.createElementNS(SVG, "path");
    p.setAttribute("d", path);
    p.setAttribute("fill", "currentColor");
    svg.appendChild(p);
    return svg;
  }
  var CHAT = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
  var CLOSE = "M6.4 5L12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z";

  var panel = document.createElement("div");
  panel.className = "panel";
  var launcher = document.createElement("button");
  launcher.type = "button";
  launcher.className = "launcher";
  var badge = document.createElement("span");
  badge.className = "badge";
  badge.hidden = true;
  root.appendChild(panel);
  root.appendChild(launcher);

  var frame = null;
  var frameReady = false;
  var opened = false;

  function drawLauncher() {
    while (launcher.firstChild) launcher.removeChild(launcher.firstChild);
    launcher.appendChild(icon(opened ? CLOSE : CHAT));
    launcher.appendChild(badge);
    launcher.setAttribute("aria-label", opened ? labels.close : labels.open);
    launcher.setAttribute("aria-expanded", String(opened));
  }

  function post(message) {
    if (frame && frameReady && frame.contentWindow) {
      message.source = "warbler-host";
      frame.contentWindow.postMessage(message, origin);
    }
  }

  function ensureFrame() {
    if (frame) return;
    frame = document.createElement("iframe");
    frame.title = labels.frame;
    frame.setAttribute("allow", "clipboard-write");
    var query = "?w=" + encodeURIComponent(widgetId) + (lang ? "&lang=" + encodeURIComponent(lang) : "");
    frame.src = origin + "/widget/frame" + query;
    panel.appendChild(frame);
  }

  function setOpen(value) {
    opened = Boolean(value);
    if (opened) ensureFrame();
    panel.classList.toggle("open", opened);
    stored("sessionStorage", openKey, opened ? "1" : null);
    if (opened) badge.hidden = true;
    drawLauncher();
    post({ type: "visibility", open: opened });
  }

  window.addEventListener("message", function (event) {
    if (!frame || event.source !== frame.contentWindow || event.origin !== origin) return;
    var data = event.data || {};
    if (data.source !== "warbler") return;
    if (data.type === "ready") {
      frameReady = true;
      post({ type: "init", identityToken: identityToken, open: opened });
    } else if (data.type === "close") {
      setOpen(false);
      launcher.focus();
    } else if (data.type === "unread") {
      badge.textContent = data.count > 9 ? "9+" : String(data.count || "");
      badge.hidden = !data.count || opened;
    } else if (data.type === "config" && /^#[0-9a-fA-F]{3,8}$/.test(data.color || "")) {
      host.style.setProperty("--warbler-accent", data.color, "important");
      stored("localStorage", colorKey, data.color);
    }
  });

  launcher.addEventListener("click", function () {
    setOpen(!opened);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && opened) setOpen(false);
  });

  drawLauncher();
  function mount() {
    document.body.appendChild(host);
    if (stored("sessionStorage", openKey) === "1") setOpen(true); // open before the reload
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  window.Warbler = {
    version: 1,
    open: function () { setOpen(true); },
    close: function () { setOpen(false); },
    toggle: function () { setOpen(!opened); },
    isOpen: function () { return opened; },
    identify: function (token) {
      identityToken = token || null;
      post({ type: "identify", token: identityToken });
    },
  };
})();
