// lectern admin: keyboard moderation, a progressive enhancement. Every key presses a button or
// ticks a box that is on the page anyway, so everything works the same without this script.
//
//   j / k      next / previous comment        x          select it for a bulk action
//   a s t u    approve, spam, trash, unapprove the current comment
//   A S T      approve, spam, trash the selected comments (or the current one)
//   r          reply to the current comment   z          undo the last action
//   ?          show these keys                Esc        close the help
"use strict";
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll(".queue-table tr[data-comment]"));
  var POSITION = "lectern-queue-position";
  var current = -1;

  function select(index) {
    if (!rows.length) { return; }
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0 && rows[current]) {
      rows[current].classList.remove("selected");
      rows[current].removeAttribute("aria-current");
    }
    current = index;
    var row = rows[current];
    row.classList.add("selected");
    row.setAttribute("aria-current", "true");
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  // After an action made from the keyboard, the next page starts where the last one left off.
  try {
    var saved = sessionStorage.getItem(POSITION);
    sessionStorage.removeItem(POSITION);
    if (saved !== null && rows.length) { select(parseInt(saved, 10) || 0); }
  } catch (e) { /* storage may be off: start at the top */ }

  function remember() {
    try { sessionStorage.setItem(POSITION, String(Math.max(current, 0))); } catch (e) { /* fine */ }
  }

  function press(button) {
    if (!button) { return false; }
    remember();
    button.click();
    return true;
  }

  function act(name) {
    if (current < 0) { select(0); }
    var row = rows[current];
    return row ? press(row.querySelector("button.action-" + name)) : false;
  }

  function bulk(name) {
    var form = document.querySelector("form.queue");
    var choice = form && form.querySelector("select[name=action]");
    if (!choice || !choice.querySelector("option[value='" + name + "']")) { return false; }
    var ticked = form.querySelectorAll("input[name=ids]:checked");
    if (!ticked.length) {
      if (current < 0) { return false; }
      var box = rows[current].querySelector("input[name=ids]");
      if (box) { box.checked = true; }
    }
    choice.value = name;
    return press(form.querySelector(".bulk button[type=submit]"));
  }

  function reply() {
    if (current < 0) { select(0); }
    var row = rows[current];
    var box = row && row.querySelector("details.reply-box");
    if (!box) { return false; }
    box.open = true;
    var text = box.querySelector("textarea");
    if (text) { text.focus(); }
    return true;
  }

  function toggleTick() {
    if (current < 0) { select(0); }
    var box = rows[current] && rows[current].querySelector("input[name=ids]");
    if (box) { box.checked = !box.checked; }
    return Boolean(box);
  }

  function help() {
    var dialog = document.getElementById("keys");
    if (!dialog) { return false; }
    if (dialog.open) { dialog.close(); } else { dialog.showModal(); }
    return true;
  }

  var shown = document.querySelector(".keys-hint");
  if (shown && rows.length) { shown.hidden = false; }
  var close = document.querySelector("#keys .close");
  if (close) { close.addEventListener("click", function () { document.getElementById("keys").close(); }); }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) { return; }
    var target = event.target;
    var tag = target && target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) { return; }
    var done = false;
    switch (event.key) {
      case "j": done = rows.length > 0; select(current + 1); break;
      case "k": done = rows.length > 0; select(current - 1); break;
      case "a": done = act("approve"); break;
      case "s": done = act("spam"); break;
      case "t": done = act("trash"); break;
      case "u": done = act("unapprove"); break;
      case "A": done = bulk("approve"); break;
      case "S": done = bulk("spam"); break;
      case "T": done = bulk("trash"); break;
      case "r": done = reply(); break;
      case "x": done = toggleTick(); break;
      case "z": done = press(document.querySelector(".flash button.undo")); break;
      case "?": done = help(); break;
      default: return;
    }
    if (done) { event.preventDefault(); }
  });
})();
