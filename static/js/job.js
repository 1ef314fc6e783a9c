// Live progress of a background job: polls its status once a second until it ends.
import { poll } from "./poll.js";

const root = document.querySelector("[data-job-status-url]");

function render(status) {
  root.querySelector(".job-state").textContent = status.state.charAt(0).toUpperCase() + status.state.slice(1);
  const bar = root.querySelector(".job-progress");
  bar.value = status.progress;
  bar.textContent = `${Math.round(status.progress * 100)}%`;
  root.querySelector(".job-message").textContent = status.message;
  const error = root.querySelector(".job-error");
  error.textContent = status.error;
  error.hidden = !status.error;
  const report = root.querySelector(".job-report");
  if (status.result && status.result.lines) {
    report.textContent = status.result.lines.join("\n");
    report.hidden = false;
  }
  const cancel = root.querySelector(".job-cancel");
  if (cancel && status.ended) cancel.remove();
}

if (root) poll(root.dataset.jobStatusUrl, { render, ended: (status) => status.ended, intervalMs: 1000 });
