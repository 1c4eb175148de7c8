// The report page's behaviour: the metric tabs, sortable leaderboards and the sample viewer.
// Model outputs and prompts are only ever written with textContent, never parsed as markup.
"use strict";

(function () {
  // ---------------------------------------------------------------- metric tabs
  const tabs = document.querySelectorAll(".metric-tab");
  tabs.forEach(function (tab) {
    tab.addEventListener("click", function () {
      tabs.forEach(function (t) { t.setAttribute("aria-pressed", String(t === tab)); });
      document.querySelectorAll(".board-wrap").forEach(function (wrap) {
        wrap.hidden = wrap.dataset.metric !== tab.dataset.metric;
      });
    });
  });

  // ---------------------------------------------------------------- sorting
  // Each cell carries its value in data-v; undefined values (data-v="") always sort last.
  function sortKey(row, col) {
    const cell = row.cells[col];
    const raw = cell ? cell.dataset.v : "";
    if (raw === undefined || raw === "") return null;
    const num = Number(raw);
    return Number.isNaN(num) ? raw : num;
  }

  function sortBoard(table, th) {
    const col = Number(th.dataset.col);
    const numeric = col > 0;
    const current = th.getAttribute("aria-sort");
    // numbers: largest first on the first click; run names: A to Z
    const descending = current ? current === "ascending" : numeric;
    table.querySelectorAll("th.sortable").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      const ka = sortKey(a, col), kb = sortKey(b, col);
      if (ka === null && kb === null) return 0;
      if (ka === null) return 1;
      if (kb === null) return -1;
      const order = typeof ka === "number" && typeof kb === "number" ? ka - kb : String(ka).localeCompare(String(kb));
      return descending ? -order : order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  document.querySelectorAll("table.board").forEach(function (table) {
    table.querySelectorAll("th.sortable").forEach(function (th) {
      th.addEventListener("click", function () { sortBoard(table, th); });
    });
  });

  // ---------------------------------------------------------------- sample viewer
  const data = JSON.parse(document.getElementById("viewer-data").textContent);
  const taskSelect = document.getElementById("viewer-task");
  if (!data || !taskSelect) return;
  const promptSelect = document.getElementById("viewer-prompt");
  const promptBox = document.getElementById("viewer-prompt-text");
  const runsBox = document.getElementById("viewer-runs");
  const notesBox = document.getElementById("viewer-notes");
  const tasks = data.tasks.filter(function (t) { return t.prompts.length > 0; });

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "n/a";
    return Number.isInteger(v) ? String(v) : v.toFixed(3);
  }

  function shortTask(name) { return name.replace(/^diversity_/, ""); }

  tasks.forEach(function (t, i) {
    const label = shortTask(t.task) + " (" + t.prompts.length + " of " + t.n_prompts + " prompts)";
    taskSelect.appendChild(new Option(label, String(i)));
  });

  function showTask() {
    const task = tasks[Number(taskSelect.value)];
    promptSelect.replaceChildren();
    task.prompts.forEach(function (p, i) {
      const drop = p.drop === null ? "" : " · drop " + fmt(p.drop);
      promptSelect.appendChild(new Option("doc " + p.doc_id + drop + " · " + p.title, String(i)));
    });
    const how = task.metric ? "prompts ordered by their " + task.metric : "no per-prompt diversity values to order by";
    notesBox.textContent = [how].concat(task.notes).join(" · ");
    showPrompt();
  }

  function outputCard(out, i) {
    const card = el("div", "out" + (out.duplicate_of === null ? "" : " dup"));
    const head = el("div", "out-head");
    head.appendChild(el("span", "", "#" + (i + 1)));
    if (out.correct === true) head.appendChild(el("span", "ok", "✓ correct"));
    if (out.correct === false) head.appendChild(el("span", "bad", "✗ incorrect"));
    if (out.duplicate_of !== null) head.appendChild(el("span", "dupmark", "duplicate of #" + (out.duplicate_of + 1)));
    if (out.chars > out.text.length) head.appendChild(el("span", "", "first " + out.text.length + " of " + out.chars + " characters"));
    if (out.chars === 0) head.appendChild(el("span", "", "empty after CoT stripping"));
    card.appendChild(head);
    card.appendChild(el("pre", "", out.text));
    return card;
  }

  function showPrompt() {
    const task = tasks[Number(taskSelect.value)];
    const prompt = task.prompts[Number(promptSelect.value)];
    promptBox.textContent = prompt.prompt || "(the prompt was not logged)";
    runsBox.replaceChildren();
    prompt.runs.forEach(function (run) {
      const col = el("div", "run-col");
      col.dataset.run = run.run;
      const title = el("h3", "", run.run);
      if (run.run === data.reference) title.appendChild(el("span", "tag", data.reference_role));
      col.appendChild(title);
      const values = el("div", "values");
      Object.keys(run.values).forEach(function (k) { values.appendChild(el("span", "", k + " " + fmt(run.values[k]))); });
      values.appendChild(el("span", "", run.outputs.length + " outputs"));
      col.appendChild(values);
      run.outputs.forEach(function (out, i) { col.appendChild(outputCard(out, i)); });
      runsBox.appendChild(col);
    });
  }

  taskSelect.addEventListener("change", showTask);
  promptSelect.addEventListener("change", showPrompt);
  if (tasks.length) showTask();
})();
