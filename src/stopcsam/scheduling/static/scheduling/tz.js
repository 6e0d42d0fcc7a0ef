// Progressive enhancement: pre-select the browser's time zone on scheduling pages.
// Without JavaScript the participant picks a zone from the list; nothing is sent anywhere.
(function () {
  "use strict";
  var form = document.getElementById("zone-form");
  if (!form || form.getAttribute("data-chosen") === "true") { return; }
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  var select = form.querySelector("select[name=tz]");
  if (!zone || !select || select.value === zone) { return; }
  var known = Array.prototype.some.call(select.options, function (o) { return o.value === zone; });
  if (!known) { return; }
  select.value = zone;
  form.submit();
})();
