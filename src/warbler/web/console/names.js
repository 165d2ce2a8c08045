// Display names of the people and bots in conversations, learnt from lists or fetched once.

import { api } from "./api.js";

export class Names {
  constructor(onLearnt) {
    this.known = new Map();
    this.pending = new Set();
    this.onLearnt = onLearnt;
  }

  remember(id, name) {
    if (id && name) this.known.set(id, name);
  }

  /** Learn names from anything shaped like {visitor: {id, display_name}} or a user. */
  rememberFrom(item) {
    if (!item || typeof item !== "object") return;
    for (const key of ["visitor", "assignee", "agent", "user", "author"]) {
      const who = item[key];
      if (who && typeof who === "object") this.remember(who.id || who.user_id, who.display_name);
    }
  }

  /** The name if known; otherwise null now, and a fetch that calls onLearnt when done. */
  get(id) {
    if (!id) return null;
    if (this.known.has(id)) return this.known.get(id);
    if (!this.pending.has(id)) {
      this.pending.add(id);
      api("GET", `/users/${encodeURIComponent(id)}`)
        .then((user) => {
          this.remember(id, user.display_name || user.username);
          this.onLearnt();
        })
        .catch(() => {}); // a name we may not read stays the generic label
    }
    return null;
  }
}
