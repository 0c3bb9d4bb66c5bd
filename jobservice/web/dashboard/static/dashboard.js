// The dashboard's few lines of script: live parts over server-sent events, the batch tree
// loaded a level at a time, a job's failed items a page at a time, and a question before a button that cannot be undone. Every
// page works without it, only not live.
"use strict";

function swap(parts) {
  for (const [id, html] of Object.entries(parts)) {
    const old = document.getElementById(id);
    if (old) old.outerHTML = html;
  }
}

function live(element) {
  const source = new EventSource(element.dataset.events);
  source.addEventListener("parts", (event) => swap(JSON.parse(event.data)));
  source.addEventListener("end", () => source.close());
  source.addEventListener("stale", async () => {
    source.close();
    const answer = await fetch(element.dataset.refresh, { headers: { Accept: "text/html" } });
    const current = document.getElementById(element.id);
    if (answer.ok && current) {
      current.outerHTML = await answer.text();
      live(document.getElementById(element.id));
    }
  });
}

async function load(container, url) {
  const answer = await fetch(url, { headers: { Accept: "text/html" } });
  const what = container.closest(".ledger") ? "The failed items" : "The batch tree";
  container.innerHTML = answer.ok ? await answer.text() : "<p class='problem'>" + what + " could not be read (" + answer.status + ").</p>";
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-events]").forEach(live);
  document.querySelectorAll(".tree[data-src], .ledger[data-src]").forEach((part) => load(part, part.dataset.src));
});

// A batch opened for the first time loads its own children; "more" loads the next page.
document.addEventListener("toggle", (event) => {
  const batch = event.target;
  if (batch.matches && batch.matches("details[data-src]") && batch.open && !batch.dataset.loaded) {
    batch.dataset.loaded = "yes";
    load(batch.querySelector(".children"), batch.dataset.src);
  }
}, true);

document.addEventListener("click", (event) => {
  const reload = event.target.closest && event.target.closest("[data-reload]");
  if (reload) {
    const tree = document.querySelector(reload.dataset.reload);
    if (tree) load(tree, tree.dataset.src);
    return;
  }
  const turn = event.target.closest && event.target.closest(".ledger a[data-page]");
  if (turn) {
    event.preventDefault();
    load(turn.closest(".ledger"), turn.href);
    return;
  }
  const more = event.target.closest && event.target.closest("a[data-more]");
  if (more) {
    event.preventDefault();
    const holder = document.createElement("div");
    more.replaceWith(holder);
    load(holder, more.href);
  }
});

document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
