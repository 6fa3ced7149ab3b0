// The agent inbox (/inbox): live updates over Server-Sent Events, keyboard shortcuts, the help
// overlay, the phone layout's back/panel toggles, and composer upkeep. No inline script anywhere
// (CSP): the page's markup carries data-* hooks and htmx attributes; this file wires the rest.
//
// Live updates carry ids only (no message text through the event bus). For each event the page
// fetches the fragment it needs from the server (a list row, a message, the thread header), so
// what is shown is always what the server renders, and the server audits every read.
"use strict";

(function () {
  var inbox = document.getElementById("inbox");
  if (!inbox) return;

  // -- small helpers --------------------------------------------------------------------------
  function $(selector, root) {
    return (root || document).querySelector(selector);
  }
  function $all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }
  function openConversation() {
    var thread = $(".thread[data-conversation]");
    return thread ? thread.getAttribute("data-conversation") : null;
  }
  function fragment(url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { "HX-Request": "true", Accept: "text/html" },
    }).then(function (response) {
      if (response.status === 204) return null;
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    });
  }
  function toElement(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html.trim();
    return holder.content.firstElementChild;
  }
  function activate(element) {
    if (window.htmx) window.htmx.process(element);
    localTimes(element);
  }
  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  // -- times in the agent's own time zone -----------------------------------------------------
  var timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  var dayFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
  var dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
  function localTimes(root) {
    $all("time[data-local]", root).forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      var kind = el.getAttribute("data-local");
      var today = new Date().toDateString() === when.toDateString();
      if (kind === "time") el.textContent = timeFormat.format(when);
      else if (kind === "date") el.textContent = dateFormat.format(when);
      else el.textContent = today ? timeFormat.format(when) : dayFormat.format(when);
      el.title = when.toLocaleString();
    });
  }

  // -- the thread -----------------------------------------------------------------------------
  function scrollToEnd() {
    var messages = $("#messages");
    if (messages) messages.scrollTop = messages.scrollHeight;
  }
  function nearEnd() {
    var messages = $("#messages");
    return !messages || messages.scrollHeight - messages.scrollTop - messages.clientHeight < 120;
  }
  // One element per message: a live update and the answer to our own send may both bring it.
  function dedupe(container) {
    var seen = {};
    $all("article.msg[id]", container)
      .reverse()
      .forEach(function (el) {
        if (seen[el.id]) el.remove();
        else seen[el.id] = true;
      });
  }
  function markCurrentRow() {
    var id = openConversation();
    $all("#rows .row").forEach(function (row) {
      var current = row.getAttribute("data-conversation") === id;
      var link = $(".row-link", row);
      if (current) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    });
    inbox.classList.toggle("has-thread", Boolean(id));
  }
  function resetKeys(root) {
    $all('input[name="idempotency_key"]', root).forEach(function (input) {
      input.value = newKey();
    });
  }
  function threadShown() {
    markCurrentRow();
    resetKeys($("#thread"));
    localTimes($("#thread"));
    scrollToEnd();
    var title = $("#thread-title");
    document.title = (title ? title.textContent + " · " : "") + "Inbox · ConnectX";
  }

  // A chosen time (datetime-local: the agent's own clock) goes to the server in UTC.
  document.body.addEventListener("htmx:configRequest", function (event) {
    var until = event.detail.parameters.until;
    if (typeof until !== "string" || !until) return;
    var at = new Date(until);
    if (!isNaN(at.getTime())) event.detail.parameters.until = at.toISOString();
  });

  document.body.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target) return;
    if (target.id === "thread") threadShown();
    else if (target.id === "messages") {
      dedupe(target);
      localTimes(target);
      scrollToEnd();
    } else localTimes(target);
    if (target.id === "rows" || target.closest("#rows")) markCurrentRow();
  });

  // A sent form starts afresh (with a new idempotency key); a failed one keeps what was typed.
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!form || form.tagName !== "FORM" || !form.closest("#composer")) return;
    if (!event.detail.successful) return;
    form.reset();
    resetKeys(form);
    var fields = $("#template-fields", form);
    if (fields) fields.replaceChildren();
    var details = form.closest("details.attach");
    if (details) details.open = false;
  });

  // -- live updates ---------------------------------------------------------------------------
  var liveState = $("#live-state");
  function setLive(state, text) {
    if (!liveState) return;
    liveState.setAttribute("data-state", state);
    liveState.textContent = text;
  }

  function upsertMessage(conversationId, messageId) {
    return fragment("/inbox/c/" + conversationId + "/m/" + messageId).then(function (html) {
      if (!html || openConversation() !== String(conversationId)) return;
      var element = toElement(html);
      if (!element) return;
      var existing = document.getElementById(element.id);
      var stick = nearEnd();
      if (existing) existing.replaceWith(element);
      else $("#messages").appendChild(element);
      activate(element);
      if (!existing && stick) scrollToEnd();
    });
  }

  function upsertRow(conversationId, moveToTop) {
    return fragment("/inbox/c/" + conversationId + "/row").then(function (html) {
      if (!html) return;
      var element = toElement(html);
      var rows = $("#rows");
      if (!element || !rows) return;
      var existing = document.getElementById(element.id);
      if (existing && !moveToTop) existing.replaceWith(element);
      else {
        if (existing) existing.remove();
        var empty = $(".rows-empty", rows);
        if (empty) empty.remove();
        rows.insertBefore(element, rows.firstElementChild);
      }
      activate(element);
      markCurrentRow();
    });
  }

  // A live change to the open conversation's header waits while the agent works in it (a menu
  // open with a choice half made), and comes when they leave it; our own actions' answers bring
  // the fresh header anyway. Menus open before a refresh stay open after it.
  var staleHead = null;
  var headVersion = 0; // bumped by every swap of the header: an older answer is dropped
  function refreshHead(conversationId) {
    var current = $(".thread-head");
    if (current && current.contains(document.activeElement)) {
      staleHead = conversationId;
      return Promise.resolve();
    }
    var version = ++headVersion;
    return fragment("/inbox/c/" + conversationId + "/head").then(function (html) {
      var head = $(".thread-head");
      if (!html || !head || openConversation() !== String(conversationId)) return;
      if (version !== headVersion) return;
      if (head.contains(document.activeElement)) {
        staleHead = conversationId; // the agent started working in it meanwhile: later
        return;
      }
      var open = $all("details[open][id]", head).map(function (d) {
        return d.id;
      });
      var element = toElement(html);
      head.replaceWith(element);
      open.forEach(function (id) {
        var details = document.getElementById(id);
        if (details) details.open = true;
      });
      activate(element);
    });
  }
  document.addEventListener("focusout", function (event) {
    var head = $(".thread-head");
    if (staleHead === null || !head || !head.contains(event.target)) return;
    if (event.relatedTarget && head.contains(event.relatedTarget)) return;
    var conversationId = staleHead;
    staleHead = null;
    window.setTimeout(function () {
      refreshHead(conversationId);
    }, 0);
  });
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.classList && target.classList.contains("thread-head")) headVersion++;
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (staleHead === null || !elt || !elt.closest || !elt.closest(".thread-head")) return;
    var conversationId = staleHead; // a change came while the agent acted: fetch it now
    staleHead = null;
    window.setTimeout(function () {
      refreshHead(conversationId);
    }, 0);
  });

  function refreshCounts() {
    var counts = $("#unread-counts");
    if (counts && window.htmx) window.htmx.trigger(counts, "refresh");
  }

  // A customer's message arriving in the thread the agent has open is read: move the marker.
  function markRead(conversationId) {
    var token = $('meta[name="csrf-token"]');
    return fetch("/api/v1/conversations/" + conversationId + "/read", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": token ? token.getAttribute("content") : "" },
    });
  }

  function refreshBell() {
    var bell = $("#bell");
    if (bell && window.htmx) window.htmx.trigger(bell, "refresh");
  }

  function reloadPanel(contactId) {
    var panel = $("#panel");
    var thread = $(".thread[data-contact]");
    if (!panel || !thread || thread.getAttribute("data-contact") !== String(contactId)) return;
    if (window.htmx) window.htmx.trigger(panel, "refresh");
  }

  // The stream could not resume (too long away, or the server restarted): reload what is shown.
  function reloadAll() {
    var filters = $("#list-filters");
    if (filters && window.htmx) window.htmx.trigger(filters, "submit");
    var open = openConversation();
    if (!open) return Promise.resolve();
    return fragment("/inbox/c/" + open).then(function (html) {
      var fresh = html && toElement(html);
      var messages = $("#messages");
      if (!fresh || !messages || openConversation() !== open) return;
      var freshMessages = $("#messages", fresh);
      messages.replaceWith(freshMessages);
      activate(freshMessages);
      var head = $(".thread-head");
      var freshHead = $(".thread-head", fresh);
      if (head && freshHead) {
        head.replaceWith(freshHead);
        activate(freshHead);
      }
      scrollToEnd();
    });
  }

  function handle(event) {
    var data;
    try {
      data = JSON.parse(event.data);
    } catch (_) {
      data = {};
    }
    var kind = event.type === "message" ? data.type || "" : event.type;
    var cid = data.conversation_id ? String(data.conversation_id) : null;
    var isOpen = cid !== null && cid === openConversation();
    var work = [];
    if (kind === "reset") {
      work.push(reloadAll());
      refreshCounts();
    }
    else if (kind === "message.new") {
      work.push(upsertRow(cid, true));
      if (isOpen) work.push(upsertMessage(cid, data.message_id));
      if (isOpen && data.direction === "in" && !document.hidden) work.push(markRead(cid));
      refreshCounts();
    } else if (kind === "message.status") {
      if (isOpen) work.push(upsertMessage(cid, data.message_id));
    } else if (kind.indexOf("conversation.") === 0) {
      work.push(upsertRow(cid, false));
      if (isOpen && kind !== "conversation.read") work.push(refreshHead(cid));
      refreshCounts();
    } else if (kind === "note.new") {
      if (isOpen) work.push(upsertNote(cid, data.note_id));
    } else if (kind === "contact.updated") {
      reloadPanel(data.contact_id);
    }
    if (kind === "notification.new" || kind === "conversation.assigned") refreshBell();
    Promise.all(work).catch(function () {
      /* the next event or a reload brings it; the live-state line says if the stream broke */
    });
  }

  function upsertNote(conversationId, noteId) {
    return fragment("/inbox/c/" + conversationId + "/notes/" + noteId).then(function (html) {
      if (!html || openConversation() !== String(conversationId)) return;
      var element = toElement(html);
      if (!element) return;
      var existing = document.getElementById(element.id);
      if (existing) existing.replaceWith(element);
      else $("#messages").appendChild(element);
      activate(element);
      scrollToEnd();
    });
  }

  var EVENTS = [
    "ready",
    "reset",
    "message.new",
    "message.status",
    "conversation.status",
    "conversation.assigned",
    "conversation.updated",
    "conversation.read",
    "note.new",
    "notification.new",
    "contact.updated",
  ];
  var source = null;
  function connect() {
    var url = inbox.getAttribute("data-events");
    if (!url || !window.EventSource) {
      setLive("off", "Live updates are not available in this browser; reload to see new messages.");
      return;
    }
    // EventSource reconnects by itself and sends Last-Event-ID, so the server replays what this
    // page missed while away; the first connection passes ?since= (the id the page was rendered
    // at), so nothing between rendering and connecting is lost either.
    source = new EventSource(url);
    source.onopen = function () {
      setLive("live", "Live");
    };
    source.onerror = function () {
      setLive("reconnecting", "Connection lost; reconnecting…");
    };
    source.onmessage = handle;
    EVENTS.forEach(function (name) {
      source.addEventListener(name, handle);
    });
  }

  // -- keyboard shortcuts ---------------------------------------------------------------------
  var help = $("#shortcuts");
  function toggleHelp() {
    if (!help) return;
    if (help.open) help.close();
    else help.showModal();
  }
  function typing(target) {
    return (
      target &&
      (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName || ""))
    );
  }
  function moveRow(step) {
    var rows = $all("#rows .row");
    if (!rows.length) return;
    var open = openConversation();
    var index = rows.findIndex(function (row) {
      return row.getAttribute("data-conversation") === open;
    });
    var next = rows[Math.min(rows.length - 1, Math.max(0, index + step))];
    if (index === -1) next = rows[0];
    var link = $(".row-link", next);
    if (link) {
      link.click();
      link.focus();
    }
  }
  // htmx binds content it swapped in only after its settle delay (20 ms); a key pressed right
  // after a thread opened would click a button not yet bound, so bind it first (idempotent).
  function clickShortcut(key) {
    var button = $('.thread-head [data-shortcut="' + key + '"]');
    if (!button) return;
    if (window.htmx) window.htmx.process(button);
    button.click();
  }
  // Open one of the thread's <details> tools (note, labels, snooze, assign) and focus its field.
  function openTool(selector, field) {
    var details = $(selector);
    if (!details) return;
    details.open = true;
    var input = details.matches(field) ? details : $(field, details);
    if (input) input.focus();
  }
  function togglePanel() {
    inbox.classList.toggle("show-panel");
    var shown = inbox.classList.contains("show-panel");
    $all('[data-action="panel"][aria-controls]').forEach(function (b) {
      b.setAttribute("aria-expanded", shown ? "true" : "false");
    });
  }
  function back() {
    inbox.classList.remove("has-thread", "show-panel");
    var link = $("#rows .row-link[aria-current]");
    if (link) link.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.metaKey) return;
    var target = event.target;
    var composing = target && (target.id === "reply-text" || target.id === "note-text");
    if (event.key === "Enter" && event.ctrlKey && composing) {
      event.preventDefault();
      var form = target.form;
      if (form && form.requestSubmit) form.requestSubmit();
      return;
    }
    if (event.ctrlKey) return;
    if (event.key === "Escape") {
      if (typing(target)) target.blur();
      else if (window.matchMedia("(max-width: 767px)").matches) back();
      return;
    }
    if (typing(target)) return;
    var handled = true;
    switch (event.key) {
      case "j":
        moveRow(1);
        break;
      case "k":
        moveRow(-1);
        break;
      case "r":
        var reply = $("#reply-text");
        if (reply) reply.focus();
        break;
      case "e":
        clickShortcut("e");
        break;
      case "a":
        clickShortcut("a");
        break;
      case "c":
        togglePanel();
        break;
      case "n":
        openTool(".note-compose", "#note-text");
        break;
      case "l":
        openTool("#label-menu", "input, a");
        break;
      case "s":
        openTool("#snooze-menu", "select");
        break;
      case "A":
        openTool("#assign-menu", "select");
        break;
      case "/":
        var search = $("#search");
        if (search) search.focus();
        break;
      case "?":
        toggleHelp();
        break;
      default:
        handled = false;
    }
    if (handled) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var trigger = event.target.closest && event.target.closest("[data-action]");
    if (!trigger) return;
    var action = trigger.getAttribute("data-action");
    if (action === "help") toggleHelp();
    else if (action === "close-help" && help) help.close();
    else if (action === "panel") togglePanel();
    else if (action === "back" && window.matchMedia("(max-width: 767px)").matches) {
      event.preventDefault();
      back();
    } else return;
  });

  // -- canned responses: "/sho…" in the reply box lists saved replies (server-rendered) --------
  function cannedList() {
    return $("#canned");
  }
  function clearCanned() {
    var list = cannedList();
    if (list) list.replaceChildren();
  }
  function useCanned(option) {
    var reply = $("#reply-text");
    if (!reply) return;
    reply.value = option.getAttribute("data-canned") || "";
    clearCanned();
    reply.focus();
    reply.setSelectionRange(reply.value.length, reply.value.length);
  }
  document.addEventListener("click", function (event) {
    var option = event.target.closest && event.target.closest("[data-canned]");
    if (option) {
      event.preventDefault();
      useCanned(option);
    }
  });
  document.addEventListener("keydown", function (event) {
    var list = cannedList();
    if (!list) return;
    var options = $all("[data-canned]", list);
    if (!options.length) return;
    var target = event.target;
    var at = options.indexOf(target);
    if (target && target.id === "reply-text") {
      if (event.key === "ArrowDown" || event.key === "Tab") {
        event.preventDefault();
        if (event.key === "Tab") useCanned(options[0]);
        else options[0].focus();
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        clearCanned();
      }
    } else if (at !== -1) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        var next = at + (event.key === "ArrowDown" ? 1 : -1);
        if (next < 0) $("#reply-text").focus();
        else options[Math.min(next, options.length - 1)].focus();
      } else if (event.key === "Escape") {
        event.preventDefault();
        clearCanned();
        $("#reply-text").focus();
      }
    }
  }, true);

  // -- start ----------------------------------------------------------------------------------
  threadShown();
  localTimes(document);
  connect();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").catch(function () {
      /* installability is a nicety; the inbox works without it */
    });
  }
})();
