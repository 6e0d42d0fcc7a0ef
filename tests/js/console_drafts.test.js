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
function load(storage, notesText = "", level = "", pathname = "/en/chat/console/s1/") {
  const notes = form("/en/chat/console/s1/notes/", [
    field("TEXTAREA", "body", notesText), field("SELECT", "risk_level", level, ["", "low", "high"]),
    field("TEXTAREA", "risk_notes", ""),
  ]);
  const escalate = form("/en/chat/console/s1/escalate/", [field("TEXTAREA", "reason", "")]);
  const listeners = {};
  const document = {
    querySelectorAll() { return [notes, escalate]; },
    addEventListener(type, fn) { listeners[type] = fn; },
  };
  const window = { location: { pathname }, sessionStorage: {
    getItem(k) { return k in storage ? storage[k] : null; },
    setItem(k, v) { storage[k] = String(v); },
    removeItem(k) { delete storage[k]; },
  } };
  vm.runInNewContext(SOURCE, { window, document });
  return { notes, escalate, submit(f) { listeners.submit({ target: f }); } };
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

test("an escalation refused with an error (its own address) gets the notes back too", () => {
  const storage = {};
  const page = load(storage);
  page.notes.fields[0].value = "Discussed coping strategies for urges.";
  page.submit(page.escalate);
  const refused = load(storage, "", "", "/en/chat/console/s1/escalate/");
  assert.strictEqual(refused.notes.fields[0].value, "Discussed coping strategies for urges.");
  assert.deepStrictEqual(storage, {});
});
