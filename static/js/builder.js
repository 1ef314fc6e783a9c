// The study builder's live preview: every change to the form asks the server for the preview (the same
// page, as "Preview the counts" would) and swaps it in, so counts and problems follow the settings.
const form = document.querySelector("form.builder");
let timer = null;
let latest = 0;

async function refresh() {
  const asked = ++latest;
  const body = new FormData(form);
  body.append("preview", "1");
  try {
    const response = await fetch(window.location.href, { method: "POST", body, credentials: "same-origin" });
    if (asked !== latest) return; // a newer change is on its way
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const preview = page.querySelector("section.preview");
    if (preview) document.querySelector("section.preview").replaceWith(preview);
    // A shortcut found: open the section of its remedies (stain normalisation, JPEG, turns).
    const remedies = form.querySelector("#section-shortcuts");
    if (preview && remedies && preview.querySelector(".shortcut [role=alert]")) remedies.open = true;
    // The pools' thumbnails follow the chosen tissue class.
    for (const fresh of page.querySelectorAll("label.pool-option")) {
      const here = fresh.htmlFor && form.querySelector(`label.pool-option[for="${fresh.htmlFor}"]`);
      const thumbnails = fresh.querySelector(".pool-thumbnails");
      const old = here && here.querySelector(".pool-thumbnails");
      if (old && thumbnails) old.replaceWith(thumbnails);
      else if (old) old.remove();
      else if (here && thumbnails) here.append(thumbnails);
    }
    const fitted = page.querySelector("#id_items_per_reader");
    if (fitted) form.querySelector("#id_items_per_reader").value = fitted.value; // fitted to the pools
  } catch (error) {
    // The server may be restarting: the next change asks again.
  }
}

if (form) {
  form.addEventListener("change", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
}
