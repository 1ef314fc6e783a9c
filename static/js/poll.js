// Polls a JSON status URL until `ended(status)` says the work has ended, drawing each status with
// `render`. A failed request (a server restarting, a lost connection) is tried again at the next tick.
export function poll(url, { render, ended, intervalMs }) {
  async function tick() {
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (response.ok) {
        const status = await response.json();
        render(status);
        if (ended(status)) return;
      }
    } catch (error) {
      // The server may be restarting: keep polling.
    }
    setTimeout(tick, intervalMs);
  }
  tick();
}
