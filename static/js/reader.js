// The expert labelling page: one patch at a time, answered by buttons or keys, no page reloads.
// Every answer is saved by the server before "Saved" shows; a reload resumes at the first unanswered patch.
//
// One answer per deliberate action. The label (R/S or its button) and the confidence (1-5 or its radio)
// may come in either order; the answer is saved as soon as it has both (Enter saves a label without a
// confidence; a study that asks none saves on the label). A held key's repeats are ignored, nothing
// is taken for LOCK_MS after an answer, and the next patch takes answers only once it is drawn.
//
// The same page runs the practice phase (data-practice): its answers go to the practice API, whose reply
// tells the patch's truth; the page shows it and waits for Enter (or the button) before the next patch.
const root = document.querySelector(".reader");
const image = root.querySelector(".patch");
const viewer = root.querySelector(".viewer");
const statusLine = root.querySelector(".status");
const errorLine = root.querySelector(".reader-error");
const progressText = root.querySelector(".reader-progress-text");
const progressBar = root.querySelector(".reader-progress");
const buttons = [...root.querySelectorAll("button.answer")];
const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
const ZOOMS = [1, 2, 3, 4, 6, 8];
const askConfidence = root.dataset.askConfidence === "1";
const LOCK_MS = 400;
const patchSize = Number(root.dataset.patchSize) || 128;
const VIEWER_MAX = 512;
// The viewer takes what the window leaves it (at most 512 px): its width, and its height below the page's
// head, less the answer controls where they sit under the patch (a phone), so that the whole patch and the
// answer are in view without scrolling. The patch starts at the largest integer scale that fits: 4x for
// the paper's 128 px patches on a desktop or a 1366x657 laptop, 2x on a phone or for 224/256 px patches.
function fit() {
  const stacked = getComputedStyle(root.querySelector(".reader-body")).flexDirection === "column";
  const below = stacked ? root.querySelector(".answer-first").getBoundingClientRect().height + 24 : 0;
  const top = viewer.getBoundingClientRect().top + window.scrollY;
  const room = Math.min(VIEWER_MAX, root.clientWidth, window.innerHeight - top - below - 8);
  const side = Math.max(patchSize, Math.floor(room));
  viewer.style.width = viewer.style.height = `${side}px`;
  return ZOOMS.filter((z) => patchSize * z <= side).pop() || 1;
}
let zoom = fit();
let current = null;
let busy = false;
let closed = false;
let label = null; // the label chosen for the patch on screen, not yet saved
let drawn = false; // the patch on screen has been drawn
let lockedUntil = 0; // no answer is taken before this time (performance.now())
const CLOSED = "This study has been closed by its manager: answers are no longer taken. Every answer you gave is kept.";

function setZoom(level, at = null) {
  // About a point on the screen (the pointer's, or the viewer's centre): the part of the patch under it
  // stays under it.
  const box = viewer.getBoundingClientRect();
  const point = at || { x: box.left + viewer.clientWidth / 2, y: box.top + viewer.clientHeight / 2 };
  const before = image.getBoundingClientRect();
  const share = (value, start, size) => (size ? Math.min(1, Math.max(0, (value - start) / size)) : 0.5);
  const fx = share(point.x, before.left, before.width);
  const fy = share(point.y, before.top, before.height);
  zoom = Math.max(ZOOMS[0], Math.min(ZOOMS[ZOOMS.length - 1], level));
  image.width = image.height = patchSize * zoom;
  const after = image.getBoundingClientRect();
  viewer.scrollLeft += after.left + fx * after.width - point.x;
  viewer.scrollTop += after.top + fy * after.height - point.y;
  root.querySelector(".zoom-level").textContent = `${zoom}×`;
  drawScaleBar();
}

// A scale bar in micrometres, from the study's resolution (the real pool's, after resampling).
const scaleBar = root.querySelector(".scale-bar");
function drawScaleBar() {
  if (!scaleBar) return;
  const micronsPerScreenPixel = Number(scaleBar.dataset.micronsPerPixel) / zoom;
  const target = 100 * micronsPerScreenPixel; // about 100 screen pixels
  const nice = [1, 2, 5, 10, 20, 25, 50, 100, 200, 500].find((v) => v >= target) || 500;
  scaleBar.querySelector("span").style.width = `${Math.round(nice / micronsPerScreenPixel)}px`;
  scaleBar.querySelector("small").textContent = `${nice} µm`;
}

// Smoothing and single-key shortcuts (WCAG 2.1.4: they can be turned off), remembered in this browser.
const smoothing = root.querySelector("input.smoothing");
const shortcuts = root.querySelector("input.shortcuts");
function setSmoothing(on) {
  smoothing.checked = on;
  viewer.classList.toggle("smooth", on);
  localStorage.setItem("histoturing.smooth", on ? "1" : "0");
}
smoothing.addEventListener("change", () => setSmoothing(smoothing.checked));
shortcuts.addEventListener("change", () => localStorage.setItem("histoturing.shortcuts", shortcuts.checked ? "1" : "0"));
setSmoothing(localStorage.getItem("histoturing.smooth") === "1");
shortcuts.checked = localStorage.getItem("histoturing.shortcuts") !== "0";

function stepZoom(direction, at = null) {
  const index = ZOOMS.indexOf(zoom) + direction;
  if (index >= 0 && index < ZOOMS.length) setZoom(ZOOMS[index], at);
}
// The wheel over the patch zooms about the pointer (as slide viewers do); the arrow keys and scroll bars pan.
viewer.addEventListener(
  "wheel",
  (event) => {
    if (event.deltaY === 0) return;
    event.preventDefault();
    stepZoom(event.deltaY < 0 ? 1 : -1, { x: event.clientX, y: event.clientY });
  },
  { passive: false },
);

function showError(message) {
  errorLine.textContent = message;
  errorLine.hidden = !message;
}

function close() {
  // The study was closed: the page turns read-only at once, whatever the reader was doing.
  closed = true;
  setBusy(true);
  statusLine.textContent = "";
  showError(CLOSED);
  root.classList.add("closed");
}

// "Why synthetic?" (where the study asks): after a first "synthetic" answer, the patch stays up with a
// checklist and an optional click on it; Enter sends them (Esc skips), then the next patch comes.
const reasonsBox = root.querySelector("fieldset.reasons");
let reasonsFor = null; // {token, next} while the checklist is open
let click = null;

// Pause: the patch is hidden and nothing is answered until the reader resumes; the paused time is not
// counted in the time per item (recorded as the page being hidden).
const pauseButton = root.querySelector("button.pause");
let paused = false;
function setPaused(value) {
  paused = value;
  viewer.classList.toggle("paused", value);
  pauseButton.setAttribute("aria-pressed", String(value));
  pauseButton.lastChild.textContent = value ? " Resume" : " Pause";
  record(value ? "hidden" : "visible");
  statusLine.textContent = value ? "Paused: answers wait until you resume." : "";
  // Nothing can be answered while paused, and the controls say so.
  for (const control of root.querySelectorAll("button.answer, input[name=confidence]")) control.disabled = value || closed;
}
pauseButton.addEventListener("click", () => setPaused(!paused));

// Practice: the truth after each answer, then Enter (or the button) for the next patch.
const practice = root.dataset.practice === "1";
const feedbackBox = root.querySelector(".feedback");
let feedbackNext = null; // the next patch, while the feedback is up
function showFeedback(data) {
  feedbackNext = data.next;
  const verdict = data.correct ? "Right" : "Not right";
  feedbackBox.querySelector("p").textContent = `${verdict}: this patch was ${data.truth}. You answered ${data.label}.`;
  feedbackBox.classList.toggle("right", data.correct);
  feedbackBox.hidden = false;
  feedbackBox.querySelector("button").focus();
}
function afterFeedback() {
  if (feedbackNext === null) return;
  const next = feedbackNext;
  feedbackNext = null;
  feedbackBox.hidden = true;
  lockedUntil = performance.now() + LOCK_MS;
  render(next);
}
if (feedbackBox) feedbackBox.querySelector("button").addEventListener("click", afterFeedback);

function ready() {
  return (
    !busy &&
    !closed &&
    !paused &&
    current !== null &&
    drawn &&
    performance.now() >= lockedUntil &&
    reasonsFor === null &&
    feedbackNext === null
  );
}

function openReasons(token, next) {
  reasonsFor = { token, next };
  click = null;
  for (const box of reasonsBox.querySelectorAll("input[name=reason]")) box.checked = false;
  reasonsBox.hidden = false;
  reasonsBox.querySelector("input[name=reason]")?.focus();
}

async function closeReasons(send) {
  if (reasonsFor === null) return;
  const { token, next } = reasonsFor;
  const reasons = [...reasonsBox.querySelectorAll("input[name=reason]:checked")].map((box) => box.value);
  if (send && (reasons.length || click)) {
    try {
      const response = await fetch(reasonsBox.dataset.reasonsUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ token, reasons, click }),
      });
      if (!response.ok) showError((await response.json()).detail || "The reasons were not saved.");
    } catch (error) {
      showError("The reasons could not be sent (connection lost?); your answer itself is saved.");
    }
  }
  reasonsFor = null;
  reasonsBox.hidden = true;
  lockedUntil = performance.now() + LOCK_MS;
  render(next);
}

if (reasonsBox) {
  reasonsBox.querySelector(".reasons-done").addEventListener("click", () => closeReasons(true));
  image.addEventListener("click", (event) => {
    if (reasonsFor === null) return;
    const box = image.getBoundingClientRect();
    const share = (value) => Math.min(1, Math.max(0, Math.round(value * 1000) / 1000));
    click = [share((event.clientX - box.left) / box.width), share((event.clientY - box.top) / box.height)];
    statusLine.textContent = `Marked at ${Math.round(click[0] * 100)}% across, ${Math.round(click[1] * 100)}% down.`;
  });
}

function setLabel(value) {
  label = value;
  for (const button of buttons) button.setAttribute("aria-pressed", String(button.dataset.label === value));
}

function chosenConfidence() {
  const checked = root.querySelector("input[name=confidence]:checked");
  return checked ? Number(checked.value) : null;
}

// The rule above: save when the answer is complete, else say what is still missing. Back at an earlier
// answer, the controls hold that answer: a change is made in them and saved with Enter (or the button),
// never half-way by its first key.
function saveIfComplete(withoutConfidence = false) {
  if (revisiting !== null && !withoutConfidence) {
    if (ready()) {
      const confidence = chosenConfidence();
      const now = `${label}${confidence ? ` · ${confidence}` : ""}`;
      statusLine.textContent = `Changed to ${now}: Enter (or Save the change) saves it; Return leaves it as it was.`;
      if (saveButton) saveButton.hidden = false;
    }
    return;
  }
  if (!ready() || !label) {
    if (ready() && askConfidence && chosenConfidence() !== null) statusLine.textContent = "Confidence chosen: now R or S.";
    return;
  }
  if (!askConfidence || withoutConfidence || chosenConfidence() !== null) {
    answer(label);
  } else {
    const name = label === "real" ? "Real" : "Synthetic";
    statusLine.textContent = `${name} chosen: now a confidence, 1 to 5 (Enter, or ${name} again, saves it without).`;
  }
}

function chooseLabel(value) {
  if (!ready()) return;
  setLabel(value);
  saveIfComplete();
}

function chooseConfidence(value) {
  if (!ready()) return;
  const radio = root.querySelector(`input[name=confidence][value="${value}"]`);
  if (radio) radio.checked = true;
  saveIfComplete();
}

// The time per item: what happened while the patch was up, sent with the answer; the server turns it into
// the time the patch was visible, focused and not idle (turing/timing.py holds the rule).
let drawnAt = 0;
let events = [];
let lastInput = -Infinity;
function record(kind) {
  if (!drawn || events.length >= 2000) return;
  events.push([Math.round(performance.now() - drawnAt), kind]);
}
function recordInput() {
  const now = performance.now();
  if (now - lastInput < 1000) return; // one sign of the reader a second is enough
  lastInput = now;
  record("input");
}
document.addEventListener("visibilitychange", () => record(document.visibilityState === "visible" ? "visible" : "hidden"));
window.addEventListener("blur", () => record("blur"));
window.addEventListener("focus", () => record("focus"));
for (const type of ["keydown", "pointerdown", "pointermove", "wheel", "touchstart"]) {
  document.addEventListener(type, recordInput, { passive: true });
}

image.addEventListener("load", () => {
  drawn = true;
  image.dataset.drawn = "1"; // answers are taken from here on (tests and assistive tools can see it)
  drawnAt = performance.now();
  events = [];
  if (document.visibilityState !== "visible") record("hidden");
  if (!document.hasFocus()) record("blur");
});

// Back (where the study allows changes): an earlier patch with the reader's own answer selected; answering
// it again changes the answer (the server records the change), then the page returns to the first patch
// still unanswered.
const backButton = root.querySelector("button.back");
let currentPosition = 0;
let revisiting = null; // the position on screen when it is an earlier, answered one

async function back() {
  if (!backButton || busy || closed) return;
  const target = (revisiting ?? currentPosition) - 1;
  if (target < 0) {
    statusLine.textContent = "This is the first patch.";
    return;
  }
  const base = backButton.dataset.answeredUrl.replace(/0$/, "");
  const response = await fetch(`${base}${target}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const data = await response.json();
  if (!response.ok) {
    showError(data.detail || "The earlier answer could not be shown.");
    return;
  }
  revisiting = target;
  current = data.item;
  drawn = false;
  image.dataset.drawn = "0";
  image.src = data.item.image_url;
  image.alt = `Patch ${target + 1} of ${data.total}`;
  // The earlier answer is shown in the controls themselves; changing either part saves the change.
  setLabel(data.label);
  for (const radio of root.querySelectorAll("input[name=confidence]")) radio.checked = Number(radio.value) === data.confidence;
  progressText.textContent = `Patch ${target + 1} of ${data.total} · back at an earlier answer`;
  const was = `${data.label}${data.confidence ? ` · ${data.confidence}` : ""}`;
  statusLine.textContent = `Your answer here: ${was}. Change it with the buttons above; B goes further back.`;
  if (returnButton) returnButton.hidden = false;
  if (saveButton) saveButton.hidden = true;
}
if (backButton) backButton.addEventListener("click", back);

// Back to the patch that waits for an answer, leaving the earlier one as it was.
const returnButton = root.querySelector("button.return");
const saveButton = root.querySelector("button.save-change");
if (saveButton) saveButton.addEventListener("click", () => { if (ready() && label) answer(label); });
async function returnToCurrent() {
  if (busy || revisiting === null) return;
  statusLine.textContent = "";
  await loadNext();
}
if (returnButton) returnButton.addEventListener("click", returnToCurrent);

function render(next) {
  if (next.open === false) close();
  if (next.finished || next.opens_at) {
    window.location.assign(root.dataset.doneUrl); // the end page (or the practice's), or when a second session opens
    return;
  }
  current = next.item;
  currentPosition = next.position;
  revisiting = null;
  if (returnButton) returnButton.hidden = true;
  if (saveButton) saveButton.hidden = true;
  setLabel(null);
  drawn = false;
  image.dataset.drawn = "0";
  image.src = next.item.image_url;
  image.alt = `Patch ${next.position + 1} of ${next.total}`;
  progressText.textContent = `${practice ? "Practice patch" : "Patch"} ${next.position + 1} of ${next.total} · ${next.answered} answered`;
  progressBar.value = next.answered;
  for (const radio of root.querySelectorAll("input[name=confidence]")) radio.checked = false;
  if (next.preload) new Image().src = next.preload.image_url; // the next patch shows at once
}

function setBusy(value) {
  busy = value;
  for (const button of buttons) button.disabled = value || closed || paused;
}

async function loadNext() {
  const response = await fetch(root.dataset.nextUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error((await response.json()).detail || response.statusText);
  render(await response.json());
}

async function answer(chosen) {
  if (!ready()) return;
  setBusy(true);
  showError("");
  statusLine.textContent = "Saving…";
  const body = {
    token: current.token,
    label: chosen,
    confidence: askConfidence ? chosenConfidence() : null,
    events,
    elapsed_ms: Math.round(performance.now() - drawnAt),
  };
  if (revisiting !== null) {
    body.position = revisiting; // the answer is for that place (an item may be read twice)
    body.revise = true; // an explicit change, from Back: any other answer for an answered patch is refused
  }
  try {
    const response = await fetch(root.dataset.answerUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    if (response.ok && practice) {
      statusLine.textContent = "";
      showFeedback(data);
    } else if (response.ok) {
      // "Resumed at…" and "The blinded test…" have been read: they go once an answer is saved.
      for (const notice of root.querySelectorAll(".notice.resumed, .notice.test-begins")) notice.hidden = true;
      const where = revisiting === null ? data.next.position : revisiting + 1;
      // What the server stored, in its words ("real · 3"), and for a change what it replaced.
      statusLine.textContent = data.changed_from
        ? `Changed from ${data.changed_from} to ${data.saved_as} for patch ${where}.`
        : `${data.repeated ? "Kept" : "Saved"}: ${data.saved_as} for patch ${where}.`;
      lockedUntil = performance.now() + LOCK_MS;
      if (reasonsBox && chosen === "synthetic" && revisiting === null && !data.repeated) openReasons(current.token, data.next);
      else render(data.next);
    } else {
      statusLine.textContent = "Not saved.";
      showError(data.detail || "The answer was not saved.");
      if (response.status === 409) await loadNext();
    }
  } catch (error) {
    statusLine.textContent = "Not saved.";
    showError("The answer could not be sent (connection lost?). Nothing is lost: answer again when you are back online.");
  } finally {
    setBusy(false);
  }
}

// A click (or tap) on the label already chosen saves it without a confidence: a touch screen has no Enter.
// Keys never do (a key pressed twice by accident must not save a half-made answer).
for (const button of buttons) {
  button.addEventListener("click", () => {
    const again = ready() && revisiting === null && label === button.dataset.label && chosenConfidence() === null;
    if (again) saveIfComplete(true);
    else chooseLabel(button.dataset.label);
  });
}
for (const radio of root.querySelectorAll("input[name=confidence]")) {
  radio.addEventListener("change", () => chooseConfidence(radio.value));
  // A confidence chosen with the mouse hands the keyboard back to the patch: the arrow keys (which pan)
  // must never move a radio the reader did not touch with them.
  radio.addEventListener("pointerup", () => setTimeout(() => viewer.focus({ preventScroll: true }), 0));
}
for (const button of root.querySelectorAll("[data-zoom-step]")) {
  button.addEventListener("click", () => stepZoom(Number(button.dataset.zoomStep)));
}
const PAN = { arrowleft: [-1, 0], arrowright: [1, 0], arrowup: [0, -1], arrowdown: [0, 1] };
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  const inControl = event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement;
  const onConfidence = event.target instanceof HTMLInputElement && event.target.name === "confidence";
  if (key in PAN && (!inControl || onConfidence) && reasonsFor === null) {
    // Arrows pan, also with focus on a confidence radio (whose native arrows would change the answer).
    viewer.scrollBy(PAN[key][0] * viewer.clientWidth * 0.2, PAN[key][1] * viewer.clientHeight * 0.2);
    event.preventDefault();
    return;
  }
  if (!shortcuts.checked && key !== "enter" && key !== "escape") return; // buttons and radios still work
  if (feedbackNext !== null) {
    if (key === "enter" && !event.repeat) afterFeedback();
    if (key === "enter") event.preventDefault(); // not also a click on the focused button
    return;
  }
  if (reasonsFor !== null) {
    // The checklist is open: Tab and Space move and tick; Enter goes on, Esc skips; nothing answers.
    if (key === "enter" || key === "escape") {
      event.preventDefault();
      closeReasons(key === "enter");
    }
    return;
  }
  const answering = key === "r" || key === "s" || key === "enter" || /^[1-5]$/.test(key);
  if (answering && event.repeat) {
    event.preventDefault(); // a held key answers once
    return;
  }
  if (key === "r") chooseLabel("real");
  else if (key === "s") chooseLabel("synthetic");
  else if (key === "enter" && label && revisiting !== null) answer(label);
  else if (key === "enter" && label) saveIfComplete(true);
  else if (key === "b" && backButton) back();
  else if (key === "m") setSmoothing(!smoothing.checked);
  else if (key === "p") setPaused(!paused);
  else if (key === "+" || key === "=") stepZoom(1);
  else if (key === "-") stepZoom(-1);
  else if (/^[1-5]$/.test(key) && askConfidence) chooseConfidence(key);
  else return;
  event.preventDefault();
});

async function watchStatus() {
  // A closed study must stop the page within seconds, also for a reader who is looking at a patch.
  try {
    const response = await fetch(root.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.ok && (await response.json()).open === false) {
      close();
      return;
    }
  } catch (error) {
    // The server may be restarting: look again at the next tick.
  }
  setTimeout(watchStatus, 3000);
}

setZoom(zoom);
let resizing = null;
window.addEventListener("resize", () => {
  // A turned phone or a resized window: fit again (after the resizing settles).
  clearTimeout(resizing);
  resizing = setTimeout(() => setZoom(fit()), 150);
});
loadNext().catch((error) => showError(`Could not load the next patch: ${error.message}`));
setTimeout(watchStatus, 3000);
