// Live view of a training run: polls its status every two seconds until the run ends.
import { poll } from "./poll.js";

const root = document.querySelector("[data-run-status-url]");
const fmt = (value, digits) => (value === null || value === undefined ? "—" : Number(value).toFixed(digits));
let lastPoints = null;
let lastGrid = null;

function text(selector, value) {
  const node = root.querySelector(selector);
  if (node) node.textContent = value;
}

function render(status) {
  const job = status.job;
  text(".run-state", job.state.charAt(0).toUpperCase() + job.state.slice(1));
  text(".run-message", job.message);
  const error = root.querySelector(".run-error");
  error.textContent = job.error;
  error.hidden = !job.error;
  const bar = root.querySelector(".run-progress");
  bar.max = status.steps;
  bar.value = status.step;
  text(".run-step", status.step);
  text(".run-epoch", status.epoch);
  text(".run-loss-d-real", fmt(status.loss_d_real, 4));
  text(".run-loss-d-fake", fmt(status.loss_d_fake, 4));
  text(".run-loss-g", fmt(status.loss_g, 4));
  text(".run-ips", fmt(status.images_per_second, 1));
  text(".run-eta", status.seconds_left === null ? "—" : `${Math.round(status.seconds_left)} s`);
  if (status.losses_url !== lastPoints) {
    root.querySelector(".run-losses").src = status.losses_url;
    lastPoints = status.losses_url;
  }
  if (status.grid_url && status.grid_url !== lastGrid) {
    const grid = root.querySelector(".run-grid");
    grid.src = status.grid_url;
    grid.hidden = false;
    text(".run-grid-step", `Step ${status.grid_step}.`);
    lastGrid = status.grid_url;
  }
  const list = root.querySelector(".run-checkpoints");
  if (status.checkpoints.length) {
    list.replaceChildren(...status.checkpoints.map((c) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = c.sample_url;
      link.textContent = "sample from it";
      item.append(`Step ${c.step} (${(c.size / 1e6).toFixed(1)} MB) · `, link);
      return item;
    }));
  }
  const warnings = root.querySelector(".run-warnings");
  if (status.warnings.length) {
    warnings.querySelector("ul").replaceChildren(...status.warnings.map((message) => {
      const item = document.createElement("li");
      item.textContent = message;
      return item;
    }));
    warnings.hidden = false;
  }
  const cancel = root.querySelector(".run-cancel");
  if (cancel && job.ended) cancel.remove();
}

if (root) poll(root.dataset.runStatusUrl, { render, ended: (status) => status.job.ended, intervalMs: 2000 });
