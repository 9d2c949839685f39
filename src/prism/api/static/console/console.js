// Renders the LLM review's Mermaid diagrams. The diagram text comes from a model that read
// hostile code, so:
// - it is read from the <pre>'s text (never parsed as HTML by us);
// - every "<" that could open an HTML tag becomes Mermaid's "#lt;" entity before Mermaid sees
//   it, so a label is always text. (Mermaid 11's strict mode sanitizes the final SVG, but while
//   laying a label out it briefly puts the label's markup into the live page: an
//   <img onerror=...> label was caught doing so by the page's CSP in our browser test.)
//   Arrows such as "-->" or "<-->" are untouched: they never put a letter after "<";
// - Mermaid runs with securityLevel "strict" (click handlers and scripts disabled) and plain
//   SVG text labels, and the page's CSP forbids inline scripts in any case;
// - a diagram that fails to parse stays visible as plain text with the error next to it.
(function () {
  "use strict";
  function render() {
    if (!window.mermaid) { return; }
    window.mermaid.initialize({
      startOnLoad: false,
      securityLevel: "strict",
      htmlLabels: false,
      flowchart: { htmlLabels: false },
      theme: "neutral",
    });
    var blocks = document.querySelectorAll("pre.mermaid");
    Array.prototype.forEach.call(blocks, function (pre, index) {
      var text = pre.textContent.replace(/<(?=[A-Za-z\/!?])/g, "#lt;");
      window.mermaid.render("prism-diagram-" + index, text).then(function (result) {
        var holder = document.createElement("div");
        holder.className = "diagram";
        holder.setAttribute("data-rendered", "true");
        holder.innerHTML = result.svg;  // Mermaid's own sanitized SVG (strict mode)
        pre.replaceWith(holder);
      }).catch(function (error) {
        var note = document.createElement("p");
        note.className = "error";
        note.textContent = "The diagram could not be rendered: " + (error && error.message ? error.message : error);
        pre.classList.add("failed");
        pre.parentNode.insertBefore(note, pre);
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
