// The study page's progress table, kept current without a reload (every three seconds).
import { poll } from "./poll.js";

const table = document.querySelector("[data-status-url]");

function render(status) {
  for (const reader of status.readers) {
    const row = table.querySelector(`tr[data-pseudonym="${reader.pseudonym}"]`);
    if (!row) continue; // a reader invited after the page loaded shows at the next reload
    row.querySelector(".answered").textContent = `${reader.answered} of ${reader.total}`;
    row.querySelector(".last-answer").textContent = reader.last_answer_text;
    row.querySelector(".minutes").textContent = reader.time_text;
    row.querySelector(".finished").textContent = reader.finished ? "yes" : "—";
  }
}

if (table) poll(table.dataset.statusUrl, { render, ended: () => false, intervalMs: 3000 });
