/* Task and intake forms (templates/_form.html); the form works without this script.
   - a text with a limit (data-maxlength) shows "120 / 4000" as you type and is never cut;
     submitting beyond the limit is refused here, with the limit stated (the server refuses too);
   - a field required only under a condition (data-required-when, from the form's if/then)
     shows its star and the condition only while the condition holds. */
(function () {
  "use strict";

  function length(text) { return Array.from(text.replace(/\r\n/g, "\n")).length; }   // characters, as JSON Schema counts

  function field(form, name) {
    return Array.prototype.find.call(form.querySelectorAll(".field[data-field]"), function (f) { return f.dataset.field === name; });
  }

  // the answers given to field `name`, as the strings its controls carry
  function answers(form, name) {
    var out = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name !== name || el.disabled) return;
      if (el.type === "radio" || el.type === "checkbox") { if (el.checked) out.push(el.value); }
      else if (el.value.trim()) out.push(el.value.trim());
    });
    var wrap = field(form, name);
    if (!out.length && wrap && wrap.dataset.blank) out.push(wrap.dataset.blank);
    return out;
  }

  function holds(form, c) {
    var got = answers(form, c.field);
    if (!got.length) return c.absent;
    switch (c.op) {
      case "in": return c.values.indexOf(got[0]) >= 0;
      case "not_in": return c.values.indexOf(got[0]) < 0;
      case "contains": return got.some(function (v) { return c.values.indexOf(v) >= 0; });
      case "min": return Number(got[0]) >= c.values[0];
      case "filled": return true;
      case "empty": return false;
    }
    return true;
  }

  function starConditional(form) {
    form.querySelectorAll(".field[data-required-when]").forEach(function (wrap) {
      var alternatives = JSON.parse(wrap.dataset.requiredWhen);
      var on = alternatives.some(function (clauses) { return clauses.every(function (c) { return holds(form, c); }); });
      wrap.querySelectorAll(".req-when, .when").forEach(function (el) { el.hidden = !on; });
      wrap.querySelectorAll("input, select, textarea").forEach(function (el) {
        if (on) el.setAttribute("aria-required", "true"); else el.removeAttribute("aria-required");
      });
    });
  }

  function count(el) {
    var limit = Number(el.dataset.maxlength), n = length(el.value);
    var counter = document.getElementById("c-" + el.name);
    if (counter) {
      counter.textContent = n + " / " + limit;
      counter.classList.toggle("over", n > limit);
      counter.hidden = el.tagName !== "TEXTAREA" && n <= limit * 0.8;
    }
    return n > limit ? "最多 " + limit + " 字，现为 " + n + " 字" : "";
  }

  function refuseTooLong(form, event) {
    var first = null;
    form.querySelectorAll("[data-maxlength]").forEach(function (el) {
      var problem = count(el);
      var error = document.getElementById("e-" + el.name);
      var wrap = el.closest(".field");
      if (problem) {
        if (error) error.textContent = problem;
        if (wrap) wrap.classList.add("field-error");
        first = first || el;
      } else if (error && error.dataset.counted) {
        error.textContent = "";
      }
      if (error) error.dataset.counted = problem ? "1" : "";
    });
    if (first) {
      event.preventDefault();
      first.focus();
    }
  }

  document.querySelectorAll("form").forEach(function (form) {
    if (!form.querySelector(".field")) return;
    form.querySelectorAll("[data-maxlength]").forEach(function (el) {
      el.addEventListener("input", function () { count(el); });
      count(el);
    });
    form.addEventListener("change", function () { starConditional(form); });
    form.addEventListener("input", function () { starConditional(form); });
    form.addEventListener("submit", function (event) { refuseTooLong(form, event); });
    starConditional(form);
  });
})();
