// The workspace's few behaviours that HTML and htmx don't give: keyboard shortcuts for the
// exception queue, the shortcut list on "?", drag-and-drop onto the file picker, and a
// source name taken from the file's. No inline scripts anywhere (the CSP forbids them).
(function () {
  "use strict";

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#workbench tr[data-item]"));
  }

  function mark(row) {
    rows().forEach(function (r) {
      r.classList.remove("selected");
      r.removeAttribute("aria-current");
    });
    row.classList.add("selected");
    row.setAttribute("aria-current", "true");
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) return false;
    var at = all.findIndex(function (r) { return r.classList.contains("selected"); });
    var next = all[Math.max(0, Math.min(all.length - 1, at + step))] || all[0];
    mark(next);
    // Asked for directly rather than through the row's own trigger: right after a swap
    // (the item acted on gone, the next one selected) htmx may not have wired the new
    // rows yet, and a key pressed then would be lost.
    window.htmx.ajax("GET", next.getAttribute("hx-get"), {
      target: next.getAttribute("hx-target") || "#detail",
      swap: next.getAttribute("hx-swap") || "innerHTML",
    });
    return true;
  }

  function press(key) {
    var target = document.querySelector('#detail [data-key="' + key + '"]');
    if (!target) return false;
    if (target.tagName === "BUTTON" || target.tagName === "A") target.click();
    else target.focus();
    return true;
  }

  function help() {
    var dialog = document.getElementById("shortcuts");
    if (dialog && !dialog.open) dialog.showModal();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    var done = false;
    switch (event.key) {
      case "?": done = help(); break;
      case "j": case "ArrowDown": done = move(1); break;
      case "k": case "ArrowUp": done = move(-1); break;
      case "a": case "x": case "m": case "r": case "c": case "h": done = press(event.key); break;
      case " ": {
        var box = document.querySelector("#workbench tr.selected input[type=checkbox]");
        if (box) { box.checked = !box.checked; done = true; }
        break;
      }
      case "/": {
        var search = document.querySelector("[data-search]");
        if (search) { search.focus(); done = true; }
        break;
      }
    }
    if (done) event.preventDefault();
  });

  // Capture phase: a click on a row's checkbox selects it for a bulk action without
  // opening the row (the checkbox still toggles: that is its default action).
  document.addEventListener("click", function (event) {
    if (event.target.closest("tr[data-item] input[type=checkbox]")) event.stopPropagation();
  }, true);

  // The header's checkbox ticks (or clears) every row of the page for a bulk action.
  document.addEventListener("change", function (event) {
    if (!event.target.matches("[data-select-page]")) return;
    var table = event.target.closest("table");
    table.querySelectorAll("tr[data-item] input[type=checkbox]").forEach(function (box) {
      box.checked = event.target.checked;
    });
  });

  document.addEventListener("click", function (event) {
    var row = event.target.closest("tr[data-item]");
    if (row) {
      mark(row);
      // htmx loads the item into the detail pane; the link is for pages without script.
      if (event.target.closest("a.item-link")) event.preventDefault();
    }
    if (event.target.closest("[data-shortcuts]")) help();
  });

  // A table wider than the screen scrolls sideways: it takes the focus, so the keyboard
  // can scroll it too (arrow keys), and says so to a screen reader.
  function scrollables() {
    document.querySelectorAll("table.list").forEach(function (table) {
      var scrolls = table.scrollWidth > table.clientWidth + 1;
      if (scrolls && !table.hasAttribute("data-scrolls")) {
        table.setAttribute("data-scrolls", "");
        table.setAttribute("tabindex", "0");
      } else if (!scrolls && table.hasAttribute("data-scrolls")) {
        table.removeAttribute("data-scrolls");
        table.removeAttribute("tabindex");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", scrollables);
  document.addEventListener("htmx:afterSettle", scrollables);
  window.addEventListener("resize", scrollables);

  function zone(event) {
    return event.target.closest ? event.target.closest("[data-dropzone]") : null;
  }
  document.addEventListener("dragover", function (event) {
    var z = zone(event);
    if (z) { event.preventDefault(); z.classList.add("over"); }
  });
  document.addEventListener("dragleave", function (event) {
    var z = zone(event);
    if (z) z.classList.remove("over");
  });
  document.addEventListener("drop", function (event) {
    var z = zone(event);
    if (!z) return;
    event.preventDefault();
    z.classList.remove("over");
    var input = z.querySelector("input[type=file]");
    input.files = event.dataTransfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // Capture phase, so the name is there before htmx sends the preview.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[type=file]") || !input.files.length) return;
    var name = document.querySelector("[data-name-from-file]");
    if (name && !name.value) name.value = input.files[0].name.replace(/\.[^.]+$/, "");
    var label = input.closest("[data-dropzone]");
    if (label) label.querySelector("span").textContent = input.files[0].name;
  }, true);
})();
