// Quick exit: leave for a neutral site and keep this page out of the back button.
// Without JavaScript the control is a plain link and still works.
(function () {
  "use strict";
  var link = document.getElementById("quick-exit");
  if (!link) { return; }
  function leave(event) {
    if (event) { event.preventDefault(); }
    window.location.replace(link.href);
  }
  link.addEventListener("click", leave);
  // The footer's hint about the Escape key is hidden until this script can honour it.
  var keys = document.getElementById("quick-exit-keys");
  if (keys) { keys.hidden = false; }
  var lastEscape = 0;
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var now = Date.now();
    if (now - lastEscape < 800) { leave(); }
    lastEscape = now;
  });
})();
