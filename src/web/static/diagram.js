/* The case diagram (web/diagram_view.py): opens on the open task(s), zooms (fit whole, 100%,
   +, -, back to the open task) and pans by dragging (ctrl+wheel zooms).
   Without this script the page shows the server's window on the open task in a scrollable box. */
(function () {
  "use strict";
  var view = document.querySelector(".diagram-view");
  var svg = view && view.querySelector("svg[data-extent]");
  if (!svg) return;
  var extent = svg.dataset.extent.split(" ").map(Number);     // x y w h of the whole drawing
  var focus = svg.dataset.focus ? svg.dataset.focus.split(" ").map(Number) : null;   // the open tasks, if any
  var level = document.querySelector(".diagram-tools .zoom-level");
  var state = { scale: 1, cx: 0, cy: 0 };                     // px per drawing unit; centre in drawing units

  view.classList.add("pannable");
  svg.removeAttribute("width");
  svg.removeAttribute("height");

  function size() { return [view.clientWidth || 1, view.clientHeight || 1]; }
  function fitScale(box) { var s = size(); return Math.min(s[0] / box[2], s[1] / box[3]); }
  function limits() { var fit = fitScale(extent); return [Math.min(fit, 1) / 2, 4]; }

  function draw() {
    var s = size(), lim = limits();
    state.scale = Math.min(Math.max(state.scale, lim[0]), lim[1]);
    var w = s[0] / state.scale, h = s[1] / state.scale;
    // keep some of the drawing in sight: the centre stays inside the drawing
    state.cx = Math.min(Math.max(state.cx, extent[0]), extent[0] + extent[2]);
    state.cy = Math.min(Math.max(state.cy, extent[1]), extent[1] + extent[3]);
    svg.setAttribute("viewBox", [state.cx - w / 2, state.cy - h / 2, w, h].join(" "));
    svg.dataset.scale = state.scale.toFixed(4);
    if (level) level.textContent = Math.round(state.scale * 100) + "%";
  }

  function show(box, atMost) {                    // centre `box`, fitted, never above `atMost`
    state.scale = Math.min(fitScale([0, 0, box[2] + 160, box[3] + 160]), atMost);
    state.cx = box[0] + box[2] / 2;
    state.cy = box[1] + box[3] / 2;
    draw();
  }

  var actions = {
    fit: function () { show(extent, Infinity); },
    actual: function () { state.scale = 1; draw(); },
    "in": function () { state.scale *= 1.25; draw(); },
    out: function () { state.scale /= 1.25; draw(); },
    focus: function () { if (focus) show(focus, 1); else show(extent, Infinity); }
  };
  document.querySelectorAll(".diagram-tools [data-noscript]").forEach(function (a) { a.hidden = true; });
  document.querySelectorAll(".diagram-tools [data-zoom]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { actions[button.dataset.zoom](); });
  });

  var drag = null;
  view.addEventListener("pointerdown", function (e) {
    if (e.button !== 0) return;
    drag = { x: e.clientX, y: e.clientY, cx: state.cx, cy: state.cy };
    view.setPointerCapture(e.pointerId);
    view.classList.add("dragging");
  });
  view.addEventListener("pointermove", function (e) {
    if (!drag) return;
    state.cx = drag.cx - (e.clientX - drag.x) / state.scale;
    state.cy = drag.cy - (e.clientY - drag.y) / state.scale;
    draw();
  });
  function stop() { drag = null; view.classList.remove("dragging"); }
  view.addEventListener("pointerup", stop);
  view.addEventListener("pointercancel", stop);
  view.addEventListener("wheel", function (e) {      // the plain wheel scrolls the page as usual
    if (!e.ctrlKey) return;
    e.preventDefault();
    state.scale *= e.deltaY < 0 ? 1.1 : 1 / 1.1;
    draw();
  }, { passive: false });
  window.addEventListener("resize", draw);

  actions.focus();
})();
