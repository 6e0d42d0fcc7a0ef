// The console's notes and escalation forms each post on their own: what was typed in the
// other one was lost when one was sent (a usability finding: notes written after a session
// went when the therapist then escalated). On the submit of one, what is typed in the others
// is kept in this tab's storage, and put back once when the next page loads. Without
// JavaScript nothing is kept; the page says to save notes before escalating.
(function () {
  "use strict";
  var forms = Array.prototype.slice.call(document.querySelectorAll("form[data-keeps-draft]"));
  var storage;
  try { storage = window.sessionStorage; } catch (e) { return; }
  if (!forms.length || !storage) { return; }

  function fields(form) {
    return Array.prototype.slice.call(form.querySelectorAll("textarea, select"))
      .filter(function (field) { return field.name; });
  }
  // By the form's own address (it names the session), not the page's: a form refused with an
  // error comes back at its own address, and the other form's draft is put back there too.
  function key(form, field) {
    return "console-draft:" + form.getAttribute("action") + ":" + field.name;
  }
  function changed(field) {
    if (field.tagName.toLowerCase() === "select") {
      var option = field.options[field.selectedIndex];
      return Boolean(option) && !option.defaultSelected;
    }
    return field.value !== field.defaultValue;
  }

  forms.forEach(function (form) {  // put back once, then gone
    fields(form).forEach(function (field) {
      var name = key(form, field);
      var kept = storage.getItem(name);
      storage.removeItem(name);
      if (kept !== null) { field.value = kept; }
    });
  });

  document.addEventListener("submit", function (event) {
    if (forms.indexOf(event.target) < 0) { return; }
    forms.forEach(function (form) {
      if (form === event.target) { return; }
      fields(form).forEach(function (field) {
        if (changed(field)) {
          try { storage.setItem(key(form, field), field.value); } catch (e) { /* full */ }
        }
      });
    });
  }, true);
}());
