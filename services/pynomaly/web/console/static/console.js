// Draws the console's plots: each [data-plot] element names the <script type="application/json"> holding its
// Vega-Lite spec. Runs on page load and after every htmx swap (an explanation, a new page of rows).
(function () {
  "use strict";

  function draw(root) {
    if (typeof vegaEmbed === "undefined") return;
    root.querySelectorAll("[data-plot]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var source = document.getElementById(el.dataset.plot);
      if (!source) return;
      el.dataset.drawn = "1";
      var spec = JSON.parse(source.textContent);
      vegaEmbed(el, spec, { renderer: "svg", actions: false }).then(function () {
        // The figure's text alternative is on the container (role=img); the SVG inside is decoration for it.
        el.querySelectorAll("svg").forEach(function (svg) { svg.setAttribute("aria-hidden", "true"); });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) {
    draw(event.target);
    // A swapped-in explanation takes the focus, so keyboard and screen-reader users land on it.
    var heading = event.target.querySelector && event.target.querySelector("[id^=explain-] h2");
    if (heading && event.target.id === "explanation") heading.focus();
  });
})();
