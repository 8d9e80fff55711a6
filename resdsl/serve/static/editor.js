// The spec editor: a textarea with line numbers and error marks (a band on the line, a squiggle
// under the spanned columns, a red line number whose tooltip is the message). No dependencies.
"use strict";

class SpecEditor {
  constructor(root, onChange) {
    this.root = root;
    this.area = root.querySelector("textarea");
    this.gutter = root.querySelector(".gutter-lines");
    this.marks = root.querySelector(".marks");
    this.errors = [];
    this.lineCount = 0;
    this.area.addEventListener("input", () => { this.render(); onChange(this.area.value); });
    this.area.addEventListener("scroll", () => this.follow());
    this.area.addEventListener("keydown", (e) => this.keydown(e));
    new ResizeObserver(() => this.render()).observe(this.area);
  }

  get value() { return this.area.value; }

  set value(text) { this.area.value = text; this.render(); }

  // Errors of this file: [{line, col, end_line, end_col, message, hint}].
  mark(errors) { this.errors = errors; this.render(); }

  metrics() {
    const style = getComputedStyle(this.area);
    if (!this.charWidth) {
      const probe = document.createElement("span");
      probe.textContent = "M".repeat(50);
      probe.style.font = style.font;
      probe.style.position = "absolute";
      probe.style.visibility = "hidden";
      document.body.appendChild(probe);
      this.charWidth = probe.getBoundingClientRect().width / 50;
      probe.remove();
    }
    return {
      line: parseFloat(style.lineHeight),
      top: parseFloat(style.paddingTop),
      left: parseFloat(style.paddingLeft),
      char: this.charWidth,
    };
  }

  render() {
    const lines = this.area.value.split("\n");
    const bad = new Map();
    for (const e of this.errors) if (!bad.has(e.line)) bad.set(e.line, e);
    if (lines.length !== this.lineCount || this.errors !== this.shownErrors) {
      const frag = document.createDocumentFragment();
      for (let i = 1; i <= lines.length; i++) {
        const d = document.createElement("div");
        d.textContent = i;
        d.className = "ln";
        d.dataset.line = i;
        const e = bad.get(i);
        if (e) {
          d.classList.add("error");
          d.title = e.message + (e.hint ? "\nhint: " + e.hint : "");
        }
        frag.appendChild(d);
      }
      this.gutter.replaceChildren(frag);
      this.lineCount = lines.length;
      this.shownErrors = this.errors;
    }
    const m = this.metrics();
    const frag = document.createDocumentFragment();
    for (const e of this.errors) {
      const band = document.createElement("div");
      band.className = "band";
      band.dataset.line = e.line;
      band.style.top = `${m.top + (e.line - 1) * m.line}px`;
      band.style.height = `${m.line}px`;
      frag.appendChild(band);
      const text = lines[e.line - 1] || "";
      const start = visualColumn(text, e.col - 1);
      const end = e.end_line === e.line && e.end_col > e.col ? visualColumn(text, e.end_col - 1) : start + 1;
      const squiggle = document.createElement("div");
      squiggle.className = "squiggle";
      squiggle.style.top = `${m.top + e.line * m.line - 4}px`;
      squiggle.style.left = `${m.left + start * m.char}px`;
      squiggle.style.width = `${Math.max(1, end - start) * m.char}px`;
      frag.appendChild(squiggle);
    }
    this.marks.replaceChildren(frag);
    this.follow();
  }

  follow() {
    this.gutter.style.transform = `translateY(${-this.area.scrollTop}px)`;
    this.marks.style.transform = `translate(${-this.area.scrollLeft}px, ${-this.area.scrollTop}px)`;
  }

  // Select the span of an error and scroll it into view.
  reveal(e) {
    const lines = this.area.value.split("\n");
    let offset = 0;
    for (let i = 0; i < e.line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
    const start = offset + e.col - 1;
    const end = e.end_line === e.line && e.end_col > e.col ? offset + e.end_col - 1 : start;
    this.area.focus();
    this.area.setSelectionRange(start, end);
    const m = this.metrics();
    const y = (e.line - 1) * m.line;
    if (y < this.area.scrollTop || y > this.area.scrollTop + this.area.clientHeight - 2 * m.line) {
      this.area.scrollTop = Math.max(0, y - this.area.clientHeight / 3);
    }
  }

  keydown(e) {
    if (e.key !== "Tab" || e.ctrlKey || e.altKey || e.metaKey) return;
    e.preventDefault();  // four spaces, as the specs are indented
    document.execCommand("insertText", false, "    ");
  }
}

// The column a character offset is drawn at, with tabs at stops of 4 (the textarea's tab-size).
function visualColumn(text, index) {
  let col = 0;
  for (let i = 0; i < index && i < text.length; i++) col = text[i] === "\t" ? col + 4 - (col % 4) : col + 1;
  return col + Math.max(0, index - text.length);
}

window.SpecEditor = SpecEditor;
