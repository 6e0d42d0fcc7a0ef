/* stopcsam widget: shows a warning and a "get confidential help" button on a partner page.
 *
 * Paste:  <script src="https://HOST/static/outreach/widget.js" data-lang="de"
 *                 data-campaign="CODE" async></script>
 * It fetches its localised text from the same host (no cookies, no credentials), builds the
 * box with plain DOM calls and inserts it where the script tag stands (at the end of the body
 * when it stands in <head>), or into the element whose id is given in data-target. Nothing else is loaded and nothing is stored.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var origin = new URL(script.src).origin;
  var params = new URLSearchParams();
  // Only a language the site speaks: the text endpoint refuses any other with a 400, and on
  // a French page (or lang="DE-at") the warning was silently never shown. English otherwise.
  var LANGUAGES = ["en", "de", "cs", "pt", "es"];
  var lang = (script.getAttribute("data-lang") || document.documentElement.lang || "")
    .slice(0, 2).toLowerCase();
  params.set("lang", LANGUAGES.indexOf(lang) >= 0 ? lang : "en");
  // Only a well-formed campaign code (models.CAMPAIGN_CODE_PATTERN): the endpoint refuses any
  // other with a 400, and a typo in data-campaign silently hid the warning. Like the frame,
  // the text is then fetched without a campaign.
  var campaign = script.getAttribute("data-campaign") || "";
  if (/^[a-z0-9][a-z0-9-]{0,31}$/.test(campaign)) { params.set("c", campaign); }

  function build(text) {
    var box = document.createElement("section");
    box.className = "stopcsam-widget";
    box.setAttribute("role", "region");
    box.setAttribute("lang", text.lang);
    var id = "stopcsam-widget-title-" + Math.random().toString(36).slice(2);
    box.setAttribute("aria-labelledby", id);
    var title = document.createElement("h2");
    title.id = id;
    title.textContent = text.title;
    var message = document.createElement("p");
    message.textContent = text.message;
    var button = document.createElement("a");
    button.className = "stopcsam-widget-button";
    button.href = text.help_url;
    button.rel = "noopener noreferrer";
    button.textContent = text.button;
    box.style.border = "2px solid #0b5c7a";
    box.style.borderRadius = ".5rem";
    box.style.padding = "1rem 1.25rem";
    button.style.display = "inline-block";
    button.style.padding = ".55rem 1.1rem";
    button.style.background = "#0b5c7a";
    button.style.color = "#fff";
    button.style.fontWeight = "700";
    button.style.borderRadius = ".4rem";
    box.appendChild(title);
    box.appendChild(message);
    box.appendChild(button);
    return box;
  }

  function place(box) {
    var targetId = script.getAttribute("data-target");
    var target = targetId && document.getElementById(targetId);
    // A script tag in <head> (where async scripts often stand) would put the box where
    // nothing is shown: then it goes at the end of the page's body.
    var parent = script.parentNode;
    if (target) { target.appendChild(box); }
    else if (parent && parent !== document.head) { parent.insertBefore(box, script); }
    else { document.body.appendChild(box); }
  }

  fetch(origin + "/api/v1/widget/message?" + params.toString(), {
    credentials: "omit", referrerPolicy: "no-referrer", mode: "cors"
  }).then(function (response) {
    if (!response.ok) { throw new Error("widget text unavailable"); }
    return response.json();
  }).then(function (text) { place(build(text)); }).catch(function () { /* show nothing */ });
})();
