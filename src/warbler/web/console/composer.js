// The reply box: Enter sends, Shift+Enter is a new line, "/shortcut" or the picker inserts a
// canned reply.

import { h, replace } from "./dom.js";
import { t } from "./i18n.js";

export class Composer {
  /** `getCanned()` -> [{shortcut, title, text}]; `onSend(text)` -> Promise (throws on error). */
  constructor({ getCanned, onSend }) {
    this.text = document.getElementById("composer-text");
    this.send = document.getElementById("send-button");
    this.hint = document.getElementById("composer-hint");
    this.popup = document.getElementById("canned-popup");
    this.cannedButton = document.getElementById("canned-button");
    this.getCanned = getCanned;
    this.onSend = onSend;
    this.matches = [];
    this.active = 0;
    this.busy = false;
    this.text.addEventListener("input", () => this.updatePopup());
    this.text.addEventListener("keydown", (e) => this.keydown(e));
    this.send.addEventListener("click", () => this.submit());
    this.cannedButton.addEventListener("click", () => {
      if (this.popup.hidden) this.showPopup(this.getCanned());
      else this.hidePopup();
    });
  }

  setEnabled(enabled, hint = "") {
    this.text.disabled = !enabled;
    this.send.disabled = !enabled;
    this.cannedButton.disabled = !enabled;
    this.hint.textContent = hint;
    if (!enabled) this.hidePopup();
  }

  fill(text) {
    this.text.value = text;
    this.hidePopup();
    this.text.focus();
  }

  clear() {
    this.text.value = "";
    this.hidePopup();
  }

  updatePopup() {
    const value = this.text.value;
    const m = /^\/(\S*)$/.exec(value);
    if (!m) {
      this.hidePopup();
      return;
    }
    const typed = m[1].toLowerCase();
    this.showPopup(this.getCanned().filter((c) => c.shortcut.toLowerCase().startsWith(typed)));
  }

  showPopup(matches) {
    this.matches = matches;
    this.active = 0;
    if (!matches.length) {
      replace(this.popup, h("li", { class: "muted" }, t("no_canned")));
    } else {
      this.drawPopup();
    }
    this.popup.hidden = false;
  }

  drawPopup() {
    replace(
      this.popup,
      this.matches.map((c, i) =>
        h(
          "li",
          {
            class: `canned-item${i === this.active ? " active" : ""}`,
            dataset: { shortcut: c.shortcut },
            onmousedown: (e) => {
              e.preventDefault(); // keep the focus in the textarea
              this.fill(c.text);
            },
          },
          h("code", {}, `/${c.shortcut}`),
          " ",
          h("strong", {}, c.title || ""),
          h("div", { class: "muted canned-text" }, c.text),
        ),
      ),
    );
  }

  hidePopup() {
    this.popup.hidden = true;
    this.matches = [];
  }

  keydown(e) {
    const open = !this.popup.hidden && this.matches.length > 0;
    if (open && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      const n = this.matches.length;
      this.active = (this.active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
      this.drawPopup();
    } else if (open && (e.key === "Enter" || e.key === "Tab")) {
      e.preventDefault();
      this.fill(this.matches[this.active].text);
    } else if (e.key === "Escape") {
      this.hidePopup();
    } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault(); // isComposing: an IME (pinyin) candidate is being chosen
      this.submit();
    }
  }

  async submit() {
    const text = this.text.value.trim();
    if (!text || this.busy || this.send.disabled) return;
    this.busy = true;
    this.send.disabled = true;
    try {
      await this.onSend(text);
      this.clear();
    } catch {
      // onSend showed the error; the text stays in the box to send again
    } finally {
      this.busy = false;
      this.send.disabled = this.text.disabled;
    }
  }
}
