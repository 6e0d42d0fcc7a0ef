// The chat client: upgrades the plain-HTML page to the websocket protocol
// (docs/chat-protocol.md). Without JavaScript the same page works by form and refresh.
// Every message keeps its client id until acknowledged, so a resend after a reconnect is
// stored once. Text is only ever inserted with textContent: nothing is interpreted as HTML.
(function () {
  "use strict";
  var root = document.getElementById("chat");
  if (!root || !window.WebSocket) { return; }
  document.documentElement.classList.add("js");
  var t = root.dataset;
  var role = t.role;
  var state = t.state;
  var log = document.getElementById("chat-log");
  var form = document.getElementById("compose");
  var statusLine = document.getElementById("chat-status");
  var typingLine = document.getElementById("chat-typing");
  var timer = document.getElementById("chat-timer");
  var timerLeft = document.getElementById("chat-timer-left") || timer;  // beside the end's time
  // Messages from the other side are announced here, once each: the log itself is no live
  // region, since every "Read" and one's own message were announced from it (a review finding).
  var announcer = document.getElementById("chat-announce");
  var lastSeq = 0;
  var pending = {};  // client id -> body, until acknowledged, in the order typed
  // Kept messages go at most this many at a time, the next as each is answered: the server
  // takes a burst of 10 messages, and a larger resend after an outage was refused in part,
  // then sent whole again (a review finding).
  var AT_ONCE = 8;
  var sentHere = {};  // client id -> true: sent on this connection, not answered yet
  var inFlight = 0;
  var ready = false;  // caught up on this connection: new messages go out in turn
  var over = false;   // the session ended with messages kept: the page sends no more
  var givenBack = false;  // ... and some came back refused, into the box
  var overText = t.tOver;  // what the page says once it sends no more
  var socket = null;
  var retry = 500;
  var resendTimer = null;  // set while refused messages wait to be sent again
  var resendDelay = 1000;  // doubles up to 30 s while the server keeps refusing; an ack resets it
  var typingSent = false;
  var typingTimer = null;
  var readWanted = 0;  // the last message from the other side shown here
  var readSent = 0;    // the last read marker sent
  var readTimer = null;
  var readUpTo = 0;    // how far the other side has read our messages
  var failures = 0;    // connections in a row that never opened
  var everOpened = false;  // a socket of this page opened once: what it sent may be stored
  // Page mode: websockets are blocked on the way (a proxy) while the page itself loads. The
  // form sends messages and "Check for new messages" fetches them, as without JavaScript.
  var pageMode = false;
  var pageModeKey = "chat-page-mode:" + t.socket;
  var PAGE_MODE_AFTER = 4;  // connections that never opened (0.5 + 1 + 2 + 4 s) ...
  var PAGE_MODE_KEPT = 30 * 60 * 1000;  // later pages of the session start in page mode
  // Times in the zone the page itself shows (the one the participant booked in, or the
  // staff member's site's), not the browser's: one transcript, one clock.
  function clockTime(date) {
    try {
      return new Intl.DateTimeFormat("en-GB", {
        hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: t.tz || undefined
      }).format(date);
    } catch (e) {
      return ("0" + date.getHours()).slice(-2) + ":" + ("0" + date.getMinutes()).slice(-2);
    }
  }

  // "Notes saved." is said once: a later reload (a change of state) would say it again.
  if (/[?&]saved=/.test(String(window.location.search)) && window.history &&
      window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname + window.location.hash);
  }

  if (log) {
    log.querySelectorAll("li[data-seq]").forEach(function (li) {
      lastSeq = Math.max(lastSeq, parseInt(li.dataset.seq, 10));
    });
  }

  function newClientId() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return "j-" + Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function say(text) { if (statusLine) { statusLine.textContent = text || ""; } }

  function senderName(sender) {
    var mine = role === "read_along" ? "" : role;
    if (sender === mine) { return t.tYou; }
    return sender === "therapist" ? t.tTherapist : t.tParticipant;
  }

  function addMessage(frame) {
    if (!log || frame.seq <= lastSeq) { return; }
    var empty = log.querySelector(".empty");
    if (empty) { empty.remove(); }
    var li = document.createElement("li");
    li.className = "msg " + frame.sender + (frame.sender === role ? " mine" : "");
    li.dataset.seq = String(frame.seq);
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = senderName(frame.sender);
    var when = document.createElement("time");
    // Microseconds cut to milliseconds: older Safari reads no more than three digits.
    var date = new Date(String(frame.sent_at).replace(/(\.\d{3})\d+/, "$1"));
    when.dateTime = frame.sent_at;
    when.textContent = " " + clockTime(date);
    var body = document.createElement("p");
    body.textContent = frame.body;
    if (t.lang) { body.lang = t.lang; }  // the session's language, whatever the page's
    li.appendChild(who); li.appendChild(when); li.appendChild(body);
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    lastSeq = frame.seq;
    if (frame.sender === role && frame.seq <= readUpTo) { markSeen(li); }
    if (frame.sender !== role && role !== "read_along") { markRead(frame.seq); }
    if (frame.sender !== role && announcer) {
      announcer.textContent = senderName(frame.sender) + ": " + frame.body;
    }
  }

  // Read markers go only while the page is shown, at most one every half second: after a
  // reconnect the replay would otherwise send one per message, over the server's frame limit.
  function markRead(seq) {
    readWanted = Math.max(readWanted, seq);
    if (readTimer !== null || document.hidden || readWanted <= readSent) { return; }
    readTimer = window.setTimeout(function () {
      readTimer = null;
      if (!document.hidden && send({ type: "read", seq: readWanted })) { readSent = readWanted; }
    }, 500);
  }
  document.addEventListener("visibilitychange", function () { markRead(readWanted); });

  function showRead(seq) {
    if (!log || !seq || seq <= readUpTo) { return; }
    readUpTo = seq;
    log.querySelectorAll("li.mine").forEach(function (li) {
      if (parseInt(li.dataset.seq, 10) <= seq) { markSeen(li); }
    });
  }
  function markSeen(li) {
    if (li.querySelector(".seen")) { return; }
    var seen = document.createElement("span");
    seen.className = "seen";
    seen.textContent = t.tRead;
    li.appendChild(seen);
  }

  // The server tells the time left on connect, on each tick and at the warning; between
  // them the page counts down by itself.
  var endsAt = null;
  function showRemaining(seconds) {
    if (!timer || seconds === null || seconds === undefined) { return; }
    endsAt = Date.now() + seconds * 1000;
    drawRemaining();
  }
  // The page's own sentences with the number in place ("%N"): the number and a word joined
  // here read "1 minutes left" in every language (a review finding).
  function drawRemaining() {
    if (endsAt === null) { return; }
    var minutes = Math.max(0, Math.ceil((endsAt - Date.now()) / 60000));
    var sentence = timer.classList.contains("warning") ? t.tEndsSoon : t.tTimeLeft;
    if (sentence) { timerLeft.textContent = sentence.replace("%N", String(minutes)); }
  }
  window.setInterval(drawRemaining, 5000);

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function flushPending() {
    Object.keys(pending).forEach(function (id) {  // in the order they were typed
      if (sentHere[id] || inFlight >= AT_ONCE) { return; }
      if (send({ type: "send", client_id: id, body: pending[id] })) {
        sentHere[id] = true;
        inFlight += 1;
      }
    });
  }
  function answered(id) {
    if (sentHere[id]) { delete sentHere[id]; inFlight -= 1; }
  }

  // The server could not store a message (database outage, or flood throttling) and sent no
  // ack: send the refused messages again later, with the same client ids, so each is stored once.
  // A reconnect resends them anyway (on caught_up), so the timer runs only while connected.
  function resendLater() {
    if (resendTimer !== null) { return; }
    resendTimer = window.setTimeout(function () {
      resendTimer = null;
      flushPending();  // the refused ones (each refusal names its message), at most 8 unanswered
    }, resendDelay);
    resendDelay = Math.min(resendDelay * 2, 30000);
  }
  function stopResending() {
    window.clearTimeout(resendTimer);
    resendTimer = null;
  }
  function showWaiting() { say(t.tRetrying || t.tSending); }

  // The console's other forms (notes, risk assessment, escalation) and a change of state load
  // the page again: the reply the therapist was writing is kept for that one load, in this
  // tab only, and put back. A participant's text never goes into the browser's storage.
  var draftKey = "chat-draft:" + String(t.socket).split("?")[0];  // whatever the language
  function keepDraft() {
    if (role !== "therapist" || !box || !box.value) { return; }
    try { window.sessionStorage.setItem(draftKey, box.value); } catch (e) { /* none */ }
  }
  function restoreDraft() {
    if (role !== "therapist" || !box) { return; }
    try {
      var kept = window.sessionStorage.getItem(draftKey);
      window.sessionStorage.removeItem(draftKey);
      if (kept && !box.value) { box.value = kept; }
    } catch (e) { /* none */ }
  }

  // The session ended (or was cancelled) with messages still kept: loading the page would
  // lose them without a word (a review finding). They go back into the box, before what is
  // being written, to be kept by hand, and the page says to load it again.
  // Some may have been stored already, their acks lost with a connection: each goes once
  // more, and the server answers a stored one with its ack (a duplicate) and the others with
  // a refusal, which puts their text back into the box (a review finding: all of them were
  // given back as unsent). Once none is left and nothing came back, the page loads again.
  function ending(newState) {
    state = newState;
    over = true;
    givenBack = false;
    stopResending();
    sentHere = {};
    inFlight = 0;
    say(t.tOver);
    flushPending();
  }
  function endingDone() {
    if (over && !givenBack && Object.keys(pending).length === 0) { loadAgain(); }
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "state":
        if (frame.state !== state) {
          if (Object.keys(pending).length && box) { ending(frame.state); return; }
          // A message being written when the session ends would go with the reload, without
          // a word (a review finding; the page without JavaScript gives it back): the page
          // stays with it in the box, and says so, as for a message kept.
          var closing = frame.state !== "live" && frame.state !== "waiting";
          if (closing && box && box.value.trim()) { ending(frame.state); return; }
          // A draft is kept for a page that still takes it (the session began), never for
          // an ended one, which would leave it in the tab's storage for good.
          if (frame.state === "live" || frame.state === "waiting") { keepDraft(); }
          loadAgain(); return;
        }
        showRemaining(frame.remaining);
        if (frame.warning && timer) { timer.classList.add("warning"); drawRemaining(); }
        showRead(frame.read);
        break;
      case "message": addMessage(frame); showRead(frame.read); break;
      case "caught_up":
        ready = true;
        retry = 500;  // a connection that works: the next drop is retried soon again
        flushPending();
        readSent = 0;  // the last marker may have died with the old connection
        markRead(readWanted);
        break;
      case "ack":  // our own message: the server sends no echo (docs/chat-protocol.md)
        if (frame.client_id in pending && frame.sent_at) {
          addMessage({ seq: frame.seq, sender: role, body: pending[frame.client_id],
                       sent_at: frame.sent_at });
        }
        delete pending[frame.client_id];
        answered(frame.client_id);
        if (resendTimer === null) { flushPending(); }  // refused ones wait for their turn
        resendDelay = 1000;  // the server stores again
        endingDone();
        showRead(frame.read);  // the other side's marker may ride on an ack or a message
        if (Object.keys(pending).length === 0) { say(""); }
        break;
      case "tick": showRemaining(frame.remaining); break;
      case "warning":
        if (timer) { timer.classList.add("warning"); }
        showRemaining(frame.remaining);
        say(t.tWarning);
        break;
      case "read": showRead(frame.seq); break;
      case "typing":
        // A supervisor reading along sees either side typing, and is told which.
        if (typingLine) {
          var typist = frame.sender === "therapist" && t.tTypingTherapist ? t.tTypingTherapist : t.tTyping;
          typingLine.textContent = frame.active ? typist : "";
        }
        break;
      case "error":
        // Kept and sent again: no ack was sent (docs/chat-protocol.md). A frame refused by
        // the frame rate names no client id, so every kept message goes again (stored once).
        if ((frame.code === "unavailable" || frame.code === "rate_limited") &&
            Object.keys(pending).length) {
          answered(frame.client_id);
          resendLater();
          showWaiting();
          break;
        }
        if (frame.client_id in pending) {  // refused for good: give the text back to edit
          var refused = pending[frame.client_id];
          if (box) { box.value = box.value ? box.value + "\n" + refused : refused; }
          delete pending[frame.client_id];
          answered(frame.client_id);
          givenBack = true;
          flushPending();
        }
        say(over ? overText : frame.message);
        break;
      default: break;
    }
  }

  // Signed out, or no longer this person's session (4403, 4404). Kept messages cannot be sent
  // any more, and loading the page would lose them without a word (they were lost so): they
  // go back into the box, before what is being written, and the page says to keep them and
  // load it again. Some may have been stored, their acks lost with a connection: the page
  // cannot ask any more, and says so. With nothing kept, the page loads again at once.
  function shutOut() {
    var kept = Object.keys(pending).map(function (id) { return pending[id]; });
    // Text in the box (being written, or given back by an ending session) is lost by a
    // reload as well: the page stays then too.
    if (!box || (!kept.length && !box.value.trim())) { reloadOnce(); return; }
    if (kept.length || !over) { overText = t.tShutOut || t.tOver; }
    over = true;
    stopResending();
    pending = {};
    sentHere = {};
    inFlight = 0;
    if (box.value) { kept.push(box.value); }
    box.value = kept.join("\n");
    say(overText);
  }

  // The page, loaded again, shows what is true now: signed out, not yours, ended, cancelled.
  // At most once in 30 s, so that a server refusing for another reason cannot make the page
  // reload in a loop.
  function reloadOnce() {
    var last = 0;
    try { last = parseInt(window.sessionStorage.getItem("chat-reloaded") || "0", 10); } catch (e) { /* none */ }
    if (Date.now() - last < 30000) { say(t.tOffline); return; }
    try { window.sessionStorage.setItem("chat-reloaded", String(Date.now())); } catch (e) { /* none */ }
    loadAgain();
  }

  // A page that answered a form (a refused note, a message given back) names the page's own
  // address (data-page): reloading it would send the form again, and the browser would ask
  // first (a review finding: a resent note form could save over newer notes).
  function loadAgain() {
    if (t.page) { window.location.replace(t.page); } else { window.location.reload(); }
  }

  // A handshake the server refuses reaches the page as a failed connection (1006), like a
  // network fault. After a few, ask the page itself: a redirect (signed out), 403 or 404, or
  // another state than this page's, and the page loads again; a network fault, and it keeps
  // trying to connect.
  // The staff console names a lighter page to ask (data-probe): fetching the console itself
  // would be one more audited transcript read each time. It tells only the sign-in.
  function probe() {
    if (!window.fetch) { return; }
    window.fetch(t.probe || window.location.href, { redirect: "manual", cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (response.type === "opaqueredirect" || response.status === 403 || response.status === 404) {
          reloadOnce();
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html && !t.probe && html.indexOf('data-state="' + state + '"') === -1) { reloadOnce(); return; }
        // ... while the page itself answered: websockets are blocked on the way.
        if (html !== null && failures >= PAGE_MODE_AFTER && !everOpened) { enterPageMode(); }
      })
      .catch(function () { /* the network: the next connection will tell */ });
  }

  // Only a page whose sockets never opened: nothing it kept can have been stored, so its
  // kept messages go back into the box, to be sent by the form (once each). The page loads
  // itself again every few seconds, as it does without JavaScript, but never while anything
  // is being written on it. The socket is still tried; once one opens, the page is live again.
  function enterPageMode() {
    if (pageMode || over) { return; }
    pageMode = true;
    try { window.sessionStorage.setItem(pageModeKey, String(Date.now())); } catch (e) { /* none */ }
    document.documentElement.classList.add("page-mode");  // "Check for new messages" shows
    if (box) {  // the waiting room has none: it only loads itself again
      var kept = Object.keys(pending).map(function (id) { return pending[id]; });
      pending = {};
      stopResending();
      if (box.value) { kept.push(box.value); }
      box.value = kept.join("\n");
    }
    say(t.tPageMode);
    window.setTimeout(refreshInPageMode, refreshMs());
  }
  function refreshInPageMode() {
    if (!pageMode) { return; }
    var active = document.activeElement;
    var writing = active && /^(TEXTAREA|INPUT|SELECT)$/i.test(active.tagName || "");
    if ((box && box.value.trim()) || writing) {
      window.setTimeout(refreshInPageMode, refreshMs());
    } else if (t.refreshTo) {
      window.location.replace(t.refreshTo);
    } else {
      loadAgain();
    }
  }
  function refreshMs() {  // the page's own refresh without JavaScript (data-refresh), or 10 s
    return 1000 * (parseInt(t.refresh, 10) || 10);
  }
  function leavePageMode() {
    pageMode = false;
    try { window.sessionStorage.removeItem(pageModeKey); } catch (e) { /* none */ }
    document.documentElement.classList.remove("page-mode");
    say("");
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var opened = false;
    socket = new WebSocket(scheme + window.location.host + t.socket);
    socket.onopen = function () {
      // ``retry`` stays as it is until the connection proves itself (caught_up): a server
      // that accepts and closes at once was tried again every half second (a review finding).
      opened = true;
      everOpened = true;
      failures = 0;
      if (pageMode) { leavePageMode(); }
      sentHere = {};
      inFlight = 0;
      ready = false;
      say(Object.keys(pending).length ? t.tSending : "");
      send({ type: "hello", after: lastSeq });
    };
    socket.onmessage = function (event) {
      try { onFrame(JSON.parse(event.data)); } catch (e) { /* a frame we do not know */ }
    };
    socket.onclose = function (event) {
      stopResending();  // caught_up after the reconnect resends what is kept
      ready = false;
      if (typingLine) { typingLine.textContent = ""; }  // its "stopped" may never come
      // Signed out, or the session is no longer this person's (docs/chat-protocol.md): what
      // is kept cannot be sent, and the page as it now stands replaces this one.
      if (event.code === 4403 || event.code === 4404) { shutOut(); return; }
      if (!opened) {
        failures += 1;
        if (failures % 3 === 0 || failures === PAGE_MODE_AFTER) { probe(); }
      }
      say(pageMode ? t.tPageMode : t.tOffline);
      window.setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  // An ended or cancelled session has nothing live to show: the page is the whole of it. A
  // draft kept for it (by an older page) goes.
  if (state === "ended" || state === "cancelled") {
    try { window.sessionStorage.removeItem(draftKey); } catch (e) { /* none */ }
    return;
  }

  var box = form ? form.querySelector("textarea") : null;
  if (form) {
    restoreDraft();
    document.addEventListener("submit", function (event) {  // the notes and escalation forms
      var marked = event.target && event.target.dataset && "keepsDraft" in event.target.dataset;
      if (event.target !== form && marked) { keepDraft(); }
    }, true);
    form.addEventListener("submit", function (event) {
      if (pageMode) { return; }  // the form sends it, as without JavaScript
      // "End session" (and "No, go back" when it asks) send this form so that the page gives
      // the reply being written back: the page answers them, never the socket.
      var by = event.submitter;
      if (by && by.name === "action" && by.value !== "send") { return; }
      var text = box.value;
      if (!text.trim()) { event.preventDefault(); return; }
      event.preventDefault();
      if (over) { say(overText); return; }
      var id = newClientId();
      pending[id] = text;
      box.value = "";
      if (ready && resendTimer === null) {
        say(t.tSending);
        flushPending();  // after any kept before it, never ahead of them
      } else {
        showWaiting();  // sent in turn once connected, after the ones already kept
      }
      send({ type: "typing", active: false });
      typingSent = false;
    });
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    box.addEventListener("input", function () {
      if (!typingSent) { typingSent = send({ type: "typing", active: true }); }
      window.clearTimeout(typingTimer);
      typingTimer = window.setTimeout(function () {
        send({ type: "typing", active: false });
        typingSent = false;
      }, 3000);
    });
  }
  // A later page of a session in page mode starts so (a message sent by the form loads the
  // page again), and still tries the socket.
  var since = 0;
  try { since = parseInt(window.sessionStorage.getItem(pageModeKey) || "0", 10); } catch (e) { /* none */ }
  if (since > 0 && Date.now() - since < PAGE_MODE_KEPT) { enterPageMode(); }
  connect();
}());
