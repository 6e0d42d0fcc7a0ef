// The console's notes and escalation forms each post on their own: what was typed in the
// other one was lost when one was sent (a usability finding: notes written after a session
// went when the therapist then escalated). When the page goes, what is typed in them is kept
// in this tab's storage, and put back once when the next page loads. Without
// JavaScript nothing is kept; the page says to save notes before escalating.
//
// Every page runs this (core/base.html): the next page clears whatever was kept, put back or
// not, so clinical notes stay in the tab's storage for one page load only, also when that
// page is not the console (the session erased meanwhile, the staff login). Kept by the form's
// address, not the page's: a form sent with an error is answered at its own address.
(function () {
  "use strict";
  var PREFIX = "console-draft:";
  var storage;
  try { storage = window.sessionStorage; } catch (e) { return; }
  if (!storage) { return; }
  var forms = Array.prototype.slice.call(document.querySelectorAll("form[data-keeps-draft]"));

  function fields(form) {
    return Array.prototype.slice.call(form.querySelectorAll("textarea, select"))
      .filter(function (field) { return field.name; });
  }
  function key(form, field) { return PREFIX + form.getAttribute("action") + ":" + field.name; }
  function changed(field) {
    if (field.tagName.toLowerCase() === "select") {
      var option = field.options[field.selectedIndex];
      return Boolean(option) && !option.defaultSelected;
    }
    return field.value !== field.defaultValue;
  }

  try {
    forms.forEach(function (form) {  // put back once
      fields(form).forEach(function (field) {
        var kept = storage.getItem(key(form, field));
        if (kept !== null) { field.value = kept; }
      });
    });
    for (var i = storage.length - 1; i >= 0; i -= 1) {  // then gone, whatever page they were for
      var name = storage.key(i);
      if (name !== null && name.indexOf(PREFIX) === 0) { storage.removeItem(name); }
    }
  } catch (e) { /* storage refused: nothing was kept either */ }
  if (!forms.length) { return; }

  // Kept when the page goes, however it goes: one of the forms sent, or the page loading
  // itself again when the session ends (chat.js), which lost notes written in its last
  // minutes. Not what the form being sent holds (it goes with it), and nothing when another
  // form is sent (logging out). A sent message (chat.js) is no leaving: it cancels its submit.
  var lastSubmit = null;
  document.addEventListener("submit", function (event) { lastSubmit = event; }, true);
  window.addEventListener("pagehide", function () {
    var by = lastSubmit && !lastSubmit.defaultPrevented ? lastSubmit.target : null;
    if (by && forms.indexOf(by) < 0) { return; }
    forms.forEach(function (form) {
      if (form === by) { return; }
      fields(form).forEach(function (field) {
        if (changed(field)) {
          try { storage.setItem(key(form, field), field.value); } catch (e) { /* full */ }
        }
      });
    });
  });
}());
