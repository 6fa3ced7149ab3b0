// ConnectX's own browser code. The Content-Security-Policy forbids inline scripts and eval, so
// Alpine runs in its CSP build (@alpinejs/csp): components are registered here with Alpine.data
// and templates refer to them by name (x-data="copyable"), calling methods and reading
// properties only (no expressions in attributes). This file is loaded (deferred) before Alpine.
"use strict";

(function () {
  // A notice in the page's live region (#notices): used for errors of htmx requests.
  function showNotice(message, kind) {
    var region = document.getElementById("notices");
    if (!region) return;
    var notice = document.createElement("p");
    notice.className = "notice" + (kind ? " " + kind : "");
    notice.setAttribute("role", kind === "error" ? "alert" : "status");
    var text = document.createElement("span");
    text.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "flash-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "\u00d7";
    close.addEventListener("click", function () {
      notice.remove();
    });
    notice.appendChild(text);
    notice.appendChild(close);
    region.replaceChildren(notice);
  }

  // Errors come back as problem+json (RFC 9457): show their "detail", which is written for people.
  function problemDetail(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      if (body && typeof body.detail === "string" && body.detail) return body.detail;
    } catch (_) {
      /* not JSON */
    }
    return "The request failed (" + xhr.status + "). Reload the page and try again.";
  }

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail && event.detail.xhr;
    if (xhr && xhr.getResponseHeader("HX-Redirect")) return; // htmx follows it
    showNotice(xhr ? problemDetail(xhr) : "The request failed.", "error");
  });

  document.addEventListener("htmx:sendError", function () {
    showNotice("Could not reach ConnectX. Check your connection and try again.", "error");
  });

  window.ConnectX = { showNotice: showNotice };

  document.addEventListener("alpine:init", function () {
    var Alpine = window.Alpine;

    // <p x-data="dismissible" x-show="open"> … <button @click="dismiss">
    Alpine.data("dismissible", function () {
      return {
        open: true,
        dismiss: function () {
          this.open = false;
        },
      };
    });

    // A secret shown once, with a copy button:
    // <div class="secret" x-data="copyable"><code x-ref="value">…</code>
    //   <button type="button" @click="copy" x-text="label">Copy</button></div>
    Alpine.data("copyable", function () {
      return {
        label: "Copy",
        copy: function () {
          var self = this;
          var value = this.$refs.value ? this.$refs.value.textContent.trim() : "";
          if (!navigator.clipboard) {
            self.label = "Select and copy";
            return;
          }
          navigator.clipboard.writeText(value).then(
            function () {
              self.label = "Copied";
              setTimeout(function () {
                self.label = "Copy";
              }, 2000);
            },
            function () {
              self.label = "Select and copy";
            }
          );
        },
      };
    });

    // Ask before a destructive submit: <form x-data="confirmSubmit" @submit="check"
    //   data-confirm="Revoke this key? Programs using it stop working.">
    Alpine.data("confirmSubmit", function () {
      return {
        check: function (event) {
          var form = event.currentTarget || event.target;
          var question = (form && form.dataset && form.dataset.confirm) || "Are you sure?";
          if (!window.confirm(question)) event.preventDefault();
        },
      };
    });

    // The inbox composer's 24-hour window countdown: <p x-data="windowClock"
    //   data-expires="<ISO time or empty>"><span x-text="label">. When the window closes it
    //   fires "window-closed" (bubbling), on which the composer reloads with the template picker.
    Alpine.data("windowClock", function () {
      return {
        now: Date.now(),
        expires: NaN,
        timer: null,
        init: function () {
          var self = this;
          // Read here: inside x-text, $el is the text's element, not the component's.
          this.expires = Date.parse(this.$el.dataset.expires || "");
          this.timer = setInterval(function () {
            var wasOpen = self.remaining > 0;
            self.now = Date.now();
            if (wasOpen && self.remaining <= 0) {
              self.$el.dispatchEvent(new CustomEvent("window-closed", { bubbles: true }));
            }
          }, 15000);
        },
        destroy: function () {
          clearInterval(this.timer);
        },
        get remaining() {
          return isNaN(this.expires) ? 0 : this.expires - this.now;
        },
        get label() {
          var ms = this.remaining;
          if (ms <= 0) {
            return "The 24-hour window is closed: only an approved template can be sent.";
          }
          var minutes = Math.ceil(ms / 60000);
          var hours = Math.floor(minutes / 60);
          var left = hours ? hours + " h " + (minutes % 60) + " min" : minutes + " min";
          return "Window closes in " + left + " (then templates only)";
        },
      };
    });

    // Show or hide a password field's text: <div x-data="reveal">
    //   <input :type="inputType" …> <button type="button" @click="toggle" x-text="label">
    Alpine.data("reveal", function () {
      return {
        shown: false,
        get inputType() {
          return this.shown ? "text" : "password";
        },
        get label() {
          return this.shown ? "Hide" : "Show";
        },
        toggle: function () {
          this.shown = !this.shown;
        },
      };
    });
  });
})();
