// The console's behaviour: forms and buttons that call the REST API with the session's CSRF
// token, revealing veiled evidence, the Streams page's updates, and the keyboard shortcuts
// listed on /console/help.
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const csrf = () => $('meta[name="csrf-token"]')?.content ?? "";

  function say(text) {
    $("#status").textContent = text;
    $("#problem").textContent = "";
  }

  function complain(text) {
    $("#problem").textContent = text;
  }

  // Errors whose detail alone does not say what went wrong.
  const headlines = {
    url_refused: "This stream URL is refused",
    too_many_streams: "No more streams can be watched now",
  };

  function describe(data, status) {
    const detail = data && typeof data === "object" ? data.detail : data;
    if (Array.isArray(detail)) return detail.map((e) => `${e.loc.join(".")}: ${e.msg}`).join("; ");
    const text = detail ? String(detail) : `the request failed (${status})`;
    const headline = data && typeof data === "object" ? headlines[data.error] : undefined;
    return headline ? `${headline}: ${text}` : text;
  }

  async function call(method, url, body) {
    const headers = { "X-CSRF-Token": csrf() };
    let payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = text; }
    }
    if (response.status === 401) {
      location.href = `/console/login?next=${encodeURIComponent(location.pathname)}`;
    }
    if (!response.ok) throw new Error(describe(data, response.status));
    return { status: response.status, data };
  }

  // A form's request: fields named in the URL template ({name}, data-json="path") fill it;
  // the rest become a JSON body (empty fields left out: the API's defaults apply; a field with
  // data-json="in:NAME" goes into the object NAME) or, for data-multipart forms, the multipart
  // body as the browser builds it.
  function request(form) {
    let url = form.dataset.api;
    const pathFields = $$('[data-json="path"]', form);
    for (const field of pathFields) url = url.replace(`{${field.name}}`, encodeURIComponent(field.value));
    if ("multipart" in form.dataset) {
      const data = new FormData(form);
      for (const field of pathFields) data.delete(field.name);
      return { url, body: data };
    }
    const body = {};
    for (const field of form.elements) {
      const kind = field.dataset?.json;
      if (!field.name || kind === "path") continue;
      if (kind === "bool") body[field.name] = field.checked;
      else if (kind === "int-list") body[field.name] = field.value.split(",").map(Number);
      else if (kind?.startsWith("in:")) {
        if (field.value !== "") (body[kind.slice(3)] ??= {})[field.name] = field.value;
      }
      else if (field.type === "checkbox") {
        if (field.checked) (body[field.name] ??= []).push(field.value);
      } else if (field.value !== "") body[field.name] = field.value;
    }
    return { url, body };
  }

  function after(element, result) {
    const next = element.dataset.then;
    if (next === "reload") location.reload();
    else if (next) location.href = next;
    else if (result.status === 204) say("Nothing to do: the queue is empty.");
    else if (result.data && result.data.id) location.href = `/console/alerts/${result.data.id}`;
  }

  async function perform(element, url, body) {
    element.setAttribute("aria-busy", "true");
    try {
      after(element, await call(element.dataset.method || "POST", url, body));
    } catch (error) {
      complain(error.message);
    } finally {
      element.removeAttribute("aria-busy");
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.dataset.api) return;
    event.preventDefault();
    const { url, body } = request(form);
    perform(form, url, body);
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-api]");
    if (button) perform(button, button.dataset.api, undefined);
  });

  // --- sign in / out -----------------------------------------------------------------------

  $("#login")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await call("POST", "/v1/session", {
        username: form.elements.username.value,
        password: form.elements.password.value,
      });
      location.href = form.dataset.next;
    } catch (error) {
      complain(error.message);
      form.elements.password.select();
    }
  });

  $("#logout")?.addEventListener("click", async () => {
    try {
      await call("DELETE", "/v1/session");
    } finally {
      location.href = "/console/login";
    }
  });

  // --- evidence: veiled (blurred, greyscale) until revealed --------------------------------

  function reveal(show) {
    const figures = $$("figure.evidence");
    const shown = show ?? figures.some((figure) => figure.classList.contains("veiled"));
    for (const figure of figures) figure.classList.toggle("veiled", !shown);
    const button = $("#reveal");
    if (button) {
      button.setAttribute("aria-pressed", String(shown));
      button.firstChild.textContent = shown ? "Veil evidence " : "Reveal evidence ";
    }
    say(shown ? "Evidence revealed." : "Evidence veiled.");
  }

  $("#reveal")?.addEventListener("click", () => reveal());
  for (const figure of $$("figure.evidence")) {
    // The first click on veiled media reveals it: it must not start a video.
    figure.addEventListener("click", (event) => {
      if (!figure.classList.contains("veiled")) return;
      event.preventDefault();
      reveal(true);
    }, true);
  }
  for (const video of $$("video")) {
    video.muted = true;
    video.autoplay = false;
  }

  // --- live tables: the Streams page's rows, fetched again every few seconds --------------

  const live = $("[data-refresh]");
  if (live) {
    let paused = false;
    const toggle = $("#refresh-toggle");
    toggle?.addEventListener("click", () => {
      paused = !paused;
      toggle.setAttribute("aria-pressed", String(paused));
      say(paused ? "Updates paused." : "Updates resumed.");
    });
    const levels = () => new Map($$("tr[data-level]", live).map((row) => [row.id, row.dataset]));

    async function refresh() {
      // Swapping the rows takes focus with them: only when it can be put back (by id).
      const focused = live.contains(document.activeElement) ? document.activeElement.id : null;
      if (paused || document.hidden || focused === "") return;
      const response = await fetch(live.dataset.refresh, { credentials: "same-origin" });
      // The session ended: the page itself then goes to the login form.
      if (response.redirected) location.reload();
      if (!response.ok || response.redirected) throw new Error(`status ${response.status}`);
      const html = await response.text();
      const before = levels();
      live.innerHTML = html;
      if (focused) document.getElementById(focused)?.focus();
      // The table is not a live region (it would read every number); a changed level is news.
      const changed = [...levels()].filter(([id, now]) => before.has(id) && before.get(id).level !== now.level);
      if (changed.length) $("#status").textContent = changed.map(([, now]) => `${now.name} is now at ${now.level}.`).join(" ");
    }

    const every = 1000 * Number(live.dataset.every || 5);
    let failing = false;
    const tick = () => refresh().then(
      () => {
        if (failing) complain("");
        failing = false;
      },
      (error) => {
        failing = true;
        complain(`The streams could not be updated (${error.message}); retrying.`);
      },
    ).finally(() => setTimeout(tick, every));
    setTimeout(tick, every);
  }

  // --- keyboard ----------------------------------------------------------------------------

  const rows = () => $$("tr.row");
  let selected = -1;

  function select(index) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(all.length - 1, index));
    all.forEach((row, i) => row.classList.toggle("selected", i === selected));
    const row = all[selected];
    const target = $("a, button, input", row);
    (target ?? row).focus();
    row.scrollIntoView({ block: "nearest" });
  }

  function selectedRow() {
    const active = document.activeElement?.closest("tr.row");
    return active ?? rows()[selected] ?? rows()[0];
  }

  const jumps = {
    q: "/console/queue", c: "/console/cases", b: "/console/banks", a: "/console/audit", s: "/console/streams",
  };
  let awaitingJump = false;

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select, [contenteditable]")) return;
    if (awaitingJump) {
      awaitingJump = false;
      if (jumps[event.key]) location.href = jumps[event.key];
      return;
    }
    const page = document.body.dataset.page;
    const actions = {
      j: () => select(selected + 1),
      k: () => select(selected - 1),
      o: () => $("a.open", selectedRow())?.click(),
      c: () => (page === "alert" ? $("#claim") : $("button.claim", selectedRow()))?.click(),
      n: () => $("#claim-next")?.click(),
      r: () => page === "alert" && reveal(),
      d: () => $("#decide select, #decide textarea")?.focus(),
      u: () => page === "alert" && (location.href = "/console/queue"),
      "?": () => (location.href = "/console/help"),
      g: () => (awaitingJump = true),
    };
    const act = actions[event.key];
    if (act) {
      event.preventDefault();
      act();
    }
  });

  // Tells a test driving the page that the shortcuts are listening.
  document.documentElement.dataset.console = "ready";
})();
