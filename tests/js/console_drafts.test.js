// The console's drafts.js under node: what is typed in the notes form survives sending the
// escalation form, and the other way round, once.
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const SOURCE = fs.readFileSync(
  path.join(__dirname, "..", "..", "src", "stopcsam", "chat", "static", "chat", "drafts.js"), "utf8");

function field(tagName, name, value, options) {
  const node = { tagName, name, value, defaultValue: value };
  if (options) {
    node.options = options.map((v, i) => ({ value: v, defaultSelected: i === 0 }));
    node.selectedIndex = 0;
    Object.defineProperty(node, "value", {
      get() { return node.options[node.selectedIndex].value; },
      set(v) { node.selectedIndex = Math.max(0, node.options.findIndex((o) => o.value === v)); },
    });
  }
  return node;
}

function form(action, fields) {
  return { action, fields, getAttribute(name) { return name === "action" ? action : null; },
    querySelectorAll() { return fields; } };
}

// A console page as the server rendered it; ``storage`` is the tab's, shared across loads.
// ``page.pathname`` is the address it was loaded at (a form sent with an error is answered at
// the form's own address), ``page.session`` the session, ``page.forms`` false for any other page.
function load(storage, notesText = "", level = "", page = {}) {
  const session = page.session || "s1";
  const notes = form(`/en/chat/console/${session}/notes/`, [
    field("TEXTAREA", "body", notesText), field("SELECT", "risk_level", level, ["", "low", "high"]),
    field("TEXTAREA", "risk_notes", ""),
  ]);
  const escalate = form(`/en/chat/console/${session}/escalate/`, [field("TEXTAREA", "reason", "")]);
  const listeners = {};
  const document = {
    querySelectorAll() { return page.forms === false ? [] : [notes, escalate]; },
    addEventListener(type, fn) { listeners[type] = fn; },
  };
  const window = { location: { pathname: page.pathname || `/en/chat/console/${session}/` },
    addEventListener(type, fn) { listeners["window:" + type] = fn; },
    sessionStorage: {
      getItem(k) { return k in storage ? storage[k] : null; },
      setItem(k, v) { storage[k] = String(v); },
      removeItem(k) { delete storage[k]; },
      key(i) { const keys = Object.keys(storage); return i < keys.length ? keys[i] : null; },
      get length() { return Object.keys(storage).length; },
    } };
  vm.runInNewContext(SOURCE, { window, document });
  return {
    notes, escalate,
    // A form sent: its submit event (capture), then the page goes.
    submit(f) { listeners.submit({ target: f, defaultPrevented: false }); this.leave(); },
    // A form whose submit a script cancels (chat.js sending a message): the page stays.
    cancelled(f) { listeners.submit({ target: f, defaultPrevented: true }); },
    leave() { listeners["window:pagehide"]({}); },
  };
}

test("notes typed before escalating are there again after it, once", () => {
  const storage = {};
  const page = load(storage);
  page.notes.fields[0].value = "Discussed coping strategies for urges.";
  page.notes.fields[1].value = "high";
  page.escalate.fields[0].value = "Please review the risk";
  page.submit(page.escalate);
  assert.strictEqual(Object.keys(storage).length, 2);  // the notes' two changed fields only
  const after = load(storage);
  assert.strictEqual(after.notes.fields[0].value, "Discussed coping strategies for urges.");
  assert.strictEqual(after.notes.fields[1].value, "high");
  assert.strictEqual(after.escalate.fields[0].value, "");  // the one sent is not kept
  assert.deepStrictEqual(storage, {});
  assert.strictEqual(load(storage).notes.fields[0].value, "");  // once
});

test("a reason typed before saving notes survives the save; unchanged fields keep nothing", () => {
  const storage = {};
  const page = load(storage, "Saved earlier.", "low");
  page.escalate.fields[0].value = "Please read along next time";
  page.submit(page.notes);
  assert.deepStrictEqual(Object.values(storage), ["Please read along next time"]);
  const after = load(storage, "Saved earlier, and more.", "low");
  assert.strictEqual(after.escalate.fields[0].value, "Please read along next time");
  assert.strictEqual(after.notes.fields[0].value, "Saved earlier, and more.");  // as saved
});

test("another form's submit (logging out) keeps nothing", () => {
  const storage = {};
  const page = load(storage);
  page.notes.fields[0].value = "Discussed coping strategies for urges.";
  page.submit({ action: "/en/staff/logout/" });
  assert.deepStrictEqual(storage, {});
});

function notesTypedThenEscalated(storage) {
  const page = load(storage);
  page.notes.fields[0].value = "Discussed coping strategies for urges.";
  page.escalate.fields[0].value = "Please review the risk";
  page.submit(page.escalate);
  assert.strictEqual(Object.keys(storage).length, 1);
}

test("an escalation answered with an error (at its own address) puts the notes back", () => {
  const storage = {};
  notesTypedThenEscalated(storage);
  const answered = load(storage, "", "", { pathname: "/en/chat/console/s1/escalate/" });
  assert.strictEqual(answered.notes.fields[0].value, "Discussed coping strategies for urges.");
  assert.deepStrictEqual(storage, {});
});

test("what was kept leaves the tab's storage on the next page, whatever it is", () => {
  // The session erased meanwhile (a 404), the login page, any other page: clinical notes
  // stayed in the tab's storage until it was closed.
  const storage = {};
  notesTypedThenEscalated(storage);
  load(storage, "", "", { forms: false, pathname: "/en/chat/console/s1/escalate/" });
  assert.deepStrictEqual(storage, {});
});

test("another session's console neither shows what was kept for this one nor leaves it", () => {
  const storage = {};
  notesTypedThenEscalated(storage);
  const other = load(storage, "", "", { session: "s2" });
  assert.strictEqual(other.notes.fields[0].value, "");
  assert.deepStrictEqual(storage, {});
});

test("notes survive the page loading itself again when the session ends", () => {
  const storage = {};
  const page = load(storage);
  page.cancelled({ action: "" });  // a message sent by the socket before: the page stayed
  page.notes.fields[0].value = "Discussed coping strategies for urges.";
  page.escalate.fields[0].value = "Please review the risk";
  page.leave();  // chat.js: location.reload() at the forced end
  const after = load(storage);
  assert.strictEqual(after.notes.fields[0].value, "Discussed coping strategies for urges.");
  assert.strictEqual(after.escalate.fields[0].value, "Please review the risk");
  assert.deepStrictEqual(storage, {});
});
