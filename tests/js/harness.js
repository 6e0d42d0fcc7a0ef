// Runs the shipped chat.js under node, against a small fake of the page, the websocket and
// fetch, so that the client's decisions (reconnect, reload, resend) can be tested one by one.
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const SOURCE = fs.readFileSync(
  path.join(__dirname, "..", "..", "src", "stopcsam", "chat", "static", "chat", "chat.js"), "utf8");

function element(tag, props) {
  const node = {
    tagName: tag, children: [], dataset: {}, className: "", textContent: "", value: "",
    listeners: {}, parent: null,
    classList: { names: new Set(), add(name) { this.names.add(name); },
      remove(name) { this.names.delete(name); }, contains(name) { return this.names.has(name); } },
    appendChild(child) { this.children.push(child); child.parent = this; },
    remove() { if (this.parent) { this.parent.children = this.parent.children.filter((c) => c !== this); } },
    querySelector(selector) { return this.querySelectorAll(selector)[0] || null; },
    querySelectorAll(selector) {
      const found = [];
      const walk = (n) => n.children.forEach((c) => { if (matches(c, selector)) { found.push(c); } walk(c); });
      walk(this);
      return found;
    },
    addEventListener(type, listener) { this.listeners[type] = listener; },
    requestSubmit() { this.listeners.submit({ preventDefault() {} }); },
  };
  return Object.assign(node, props || {});
}

function matches(node, selector) {
  const classes = (node.className || "").split(" ");
  if (selector.startsWith(".")) { return classes.includes(selector.slice(1)); }
  if (selector === "li[data-seq]") { return node.tagName === "li" && node.dataset.seq !== undefined; }
  if (selector === "li.mine") { return node.tagName === "li" && classes.includes("mine"); }
  return node.tagName === selector;
}

// A page: role and state as the server rendered them; what the page's fetch answers.
function page({ role = "participant", state = "live", fetchAnswer = null, probe = undefined,
  storage = {}, olderSafari = false, pageAddress = undefined } = {}) {
  const root = element("section", { dataset: {
    role, state, socket: "/ws/chat/abc", tz: "UTC", tYou: "You", tTherapist: "Therapist",
    tParticipant: "Participant", tTyping: "The participant is typing…",
    tTypingTherapist: "The therapist is typing…", tSending: "Sending…", tOffline: "Offline",
    tRead: "Read", tWarning: "Warning", tOver: "Over", tShutOut: "Signed out", tPageMode: "Page mode", tTimeLeft: "Time left: %N min",
    tEndsSoon: "The session ends soon: %N min left.", lang: "en", probe, page: pageAddress } });
  const log = element("ol");
  const form = element("form");
  const box = element("textarea");
  form.appendChild(box);
  const ids = { chat: root, "chat-log": log, compose: form, "chat-status": element("p"),
    "chat-typing": element("p"), "chat-timer": element("p"), "chat-timer-left": element("span"),
    "chat-announce": element("p") };
  const world = { sockets: [], timers: [], reloads: 0, replaced: [], fetches: [], storage, now: 1_000_000,
    box, ids, documentListeners: {} };
  class FakeSocket {
    constructor(url) { this.url = url; this.sent = []; this.readyState = 0; world.sockets.push(this); }
    send(text) { this.sent.push(JSON.parse(text)); }
  }
  FakeSocket.OPEN = 1;
  const window = {
    WebSocket: FakeSocket,
    location: { protocol: "https:", host: "example.org", href: "https://example.org/en/chat/s/abc/",
      reload() { world.reloads += 1; }, replace(url) { world.replaced.push(url); } },
    // A new client id each time: two messages with one id would hide every ordering bug.
    crypto: { getRandomValues(a) { world.idCount = (world.idCount || 0) + 1; return a.fill(world.idCount % 256); } },
    setTimeout(fn, ms) { world.timers.push({ fn, ms }); return world.timers.length; },
    clearTimeout() {},
    setInterval() {},
    sessionStorage: {
      getItem(key) { return key in world.storage ? world.storage[key] : null; },
      setItem(key, value) { world.storage[key] = String(value); },
      removeItem(key) { delete world.storage[key]; },
    },
    fetch(url, options) {
      world.fetches.push({ url, options });
      return Promise.resolve(fetchAnswer);
    },
  };
  const document = { getElementById: (id) => ids[id] || null, createElement: (tag) => element(tag),
    documentElement: element("html"), hidden: false,
    addEventListener(type, listener) { world.documentListeners[type] = listener; } };
  const context = { window, document, WebSocket: FakeSocket, JSON, Object, Math, String,
    parseInt, Uint8Array, Array, Promise, Date: { now: () => world.now }, console };
  context.Date = class extends Date {
    // Older Safari: a time with more than three digits of a second is an Invalid Date.
    constructor(...args) {
      if (olderSafari && typeof args[0] === "string" && /\.\d{4,}/.test(args[0])) { super(NaN); } else { super(...args); }
    }
    static now() { return world.now; }
  };
  vm.createContext(context);
  vm.runInContext(SOURCE, context);
  return Object.assign(world, {
    documentElement: document.documentElement,
    socket() { return world.sockets[world.sockets.length - 1]; },
    open(s) { s.readyState = 1; s.onopen(); },
    frame(s, frame) { s.onmessage({ data: JSON.stringify(frame) }); },
    close(s, code) { s.readyState = 3; s.onclose({ code }); },
    runTimers() { world.timers.splice(0).forEach((t) => t.fn()); },
    type(text) { box.value = text; form.listeners.submit({ preventDefault() {} }); },
    settle() { return new Promise((resolve) => setImmediate(resolve)); },
  });
}

module.exports = { page };
