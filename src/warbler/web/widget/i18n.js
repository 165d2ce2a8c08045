// The widget's words in English and Chinese: the frame's ?lang=, else the browser's language.

const STRINGS = {
  en: {
    title: "Chat with us",
    close: "Close chat",
    placeholder: "Type your message…",
    send: "Send",
    you: "You",
    assistant: "Assistant",
    agent: "Support agent",
    sources: "Sources",
    typing: "typing…",
    connecting: "Connecting…",
    reconnecting: "Reconnecting…",
    offline: "You are offline. Messages will be sent when the connection is back.",
    talk_to_human: "Talk to a person",
    human_phrase: "Talk to a human",
    queued: "You're in the queue for a person: position {position}.",
    queued_wait: "You're in the queue for a person: position {position}, expected wait about {minutes} min.",
    queued_next: "A person will be with you shortly.",
    closed_until: "Our team is away right now. A person will reply {when}.",
    closed: "Our team is away right now. A person will reply as soon as they are back.",
    assigned: "You're chatting with {agent}.",
    resolved: "This conversation has been resolved. Write again any time.",
    csat_title: "How did we do?",
    csat_comment: "Anything you'd like to add? (optional)",
    csat_send: "Send rating",
    csat_thanks: "Thank you for your feedback!",
    csat_star: "{n} of 5 stars",
    identity_needed: "Please sign in on this site to chat with us.",
    unavailable: "The chat is not available right now. Please try again later.",
    send_failed: "Not sent. Tap to retry.",
    too_fast: "You are sending too fast; please wait a moment.",
    retry: "Retry",
    load_older: "Earlier messages",
  },
  zh: {
    title: "在线客服",
    close: "关闭聊天",
    placeholder: "请输入消息…",
    send: "发送",
    you: "我",
    assistant: "智能助手",
    agent: "人工客服",
    sources: "参考来源",
    typing: "正在输入…",
    connecting: "正在连接…",
    reconnecting: "正在重新连接…",
    offline: "网络已断开，恢复后将自动发送消息。",
    talk_to_human: "转人工",
    human_phrase: "转人工",
    queued: "正在为您转接人工客服，当前排在第 {position} 位。",
    queued_wait: "正在为您转接人工客服，当前排在第 {position} 位，预计等待约 {minutes} 分钟。",
    queued_next: "客服人员马上为您服务。",
    closed_until: "客服人员现在不在线，将于 {when} 回复您。",
    closed: "客服人员现在不在线，上线后会尽快回复您。",
    assigned: "{agent} 正在为您服务。",
    resolved: "本次会话已解决，如有问题可随时留言。",
    csat_title: "请为本次服务评分",
    csat_comment: "还有什么想告诉我们的吗？（选填）",
    csat_send: "提交评价",
    csat_thanks: "感谢您的评价！",
    csat_star: "{n} 星（满分 5 星）",
    identity_needed: "请先在本网站登录，再与我们聊天。",
    unavailable: "在线客服暂时不可用，请稍后再试。",
    send_failed: "发送失败，点击重试。",
    too_fast: "发送太快了，请稍候再试。",
    retry: "重试",
    load_older: "更早的消息",
  },
};

export function pickLang(requested) {
  const value = (requested || navigator.language || "en").toLowerCase();
  return value.startsWith("zh") ? "zh" : "en";
}

export function translator(lang) {
  const table = STRINGS[lang] || STRINGS.en;
  return (key, vars) => {
    let text = table[key] ?? STRINGS.en[key] ?? key;
    for (const [name, value] of Object.entries(vars || {})) {
      text = text.replaceAll(`{${name}}`, String(value));
    }
    return text;
  };
}

// "today at 09:00", "Mon 09:00", in the visitor's language and time zone.
export function formatWhen(iso, lang) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  const locale = lang === "zh" ? "zh-CN" : "en";
  const sameDay = at.toDateString() === new Date().toDateString();
  const time = at.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  if (sameDay) return lang === "zh" ? `今天 ${time}` : `today at ${time}`;
  const day = at.toLocaleDateString(locale, { weekday: "short", month: "short", day: "numeric" });
  return lang === "zh" ? `${day} ${time}` : `on ${day} at ${time}`;
}
